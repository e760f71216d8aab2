"""Install script for jepa_mpc, both for pip (``pip install -e .[test,ros,bags,ray]``) and for a ROS 2
workspace (``colcon build`` with the ament_python build type declared in package.xml).

The ROS-specific parts are the ``data_files`` below: the ament resource index marker, the
package manifest, the launch files and the parameter files go to ``share/jepa_mpc`` where
``ros2 launch`` and ``get_package_share_directory`` look for them.
"""

from glob import glob

from setuptools import find_packages, setup

PACKAGE = "jepa_mpc"

setup(
    name=PACKAGE,
    version="0.1.0",
    description="Goal-image MPC with a V-JEPA 2 world model, MuJoCo tasks and ROS 2 nodes",
    packages=find_packages(
        include=[
            "jepa_mpc_foundation*",
            "jepa_mpc_dataset*",
            "worldmodel*",
            "planner*",
            "sim*",
            "ros_nodes*",
            "jepa_mpc*",
        ]
    ),
    package_data={"sim": ["assets/**/*"], "worldmodel": ["default_model/*", "language_model/*"]},
    include_package_data=True,
    data_files=[
        ("share/ament_index/resource_index/packages", [f"resource/{PACKAGE}"]),
        (f"share/{PACKAGE}", ["package.xml"]),
        (f"share/{PACKAGE}/launch", glob("launch/*.launch.py")),
        (f"share/{PACKAGE}/config", glob("config/*.yaml")),
    ],
    python_requires=">=3.10",
    # torch is pinned by the Makefile (torch==2.13.0, the CPU build CI uses); the range here lets
    # a user keep a CUDA build they installed first (see README, "GPU").
    install_requires=[
        "torch>=2.4",
        "numpy>=1.24",
        "pyyaml>=6",
        "tqdm>=4.60",
        "mujoco>=3.1",
        "gymnasium>=1.0",
        "pyarrow>=14",
        "av>=12",
        "imageio>=2.30",
        "matplotlib>=3.7",
        "draccus>=0.11,<0.12",
        "scipy>=1.11",
        "tensorboard>=2.15",
        "pillow>=10.1",  # ImageFont.load_default(size=...): the captions of render-tasks (sim/gallery.py)
        "safetensors>=0.4",  # Hugging Face VJEPA2Model checkpoints (worldmodel/hf_checkpoint.py)
    ],
    extras_require={
        # transformers: the parity test of Hugging Face VJEPA2Model checkpoints (its own forward is the truth)
        # ruff: pinned, since a new release may format differently or add checks (`make test` runs both; ruff.toml)
        "test": [
            "pytest>=8",
            "pytest-timeout>=2",
            "pytest-xdist>=3.5",  # `make test` runs the suite in two processes
            "import-linter>=2.1",
            "hypothesis>=6.100",
            "transformers>=4.53",
            "ruff==0.17.6",
            # the run recordings' messages decoded from the schemas stored in the file, as Foxglove decodes them
            "mcap-ros2-support>=0.6,<0.7",
        ],
        # transformers: a local Hugging Face text model reading goals in words (`train-language-goal --text_model`)
        "text": ["transformers>=4.53"],
        # rosbags: `jepa-mpc import-bag` reads rosbag2 bags (MCAP, sqlite3) in pure Python, without ROS; pinned to
        # the minor version its tests ran with (tests/test_import_bag.py writes bags with its writer).
        "bags": ["rosbags==0.11.*"],
        # ray: `jepa-mpc eval` and `jepa-mpc collect --backend ray` (jepa_mpc_foundation/episode_backends.py, the one
        # module that imports it; tested with 2.60); the default install, `make demo` and --workers need none of it
        "ray": ["ray>=2.9"],
        "ros": [
            "ros-rclpy[fastrtps]",
            "ros-sensor-msgs",
            "ros-geometry-msgs",
            "ros-std-msgs",
            "ros-std-srvs",
            "ros-trajectory-msgs",
            "ros-lifecycle-msgs",
            "ros-rcl-lifecycle",
            "ros-diagnostic-msgs",
            "ros-nav-msgs",
            # run recordings (ros_nodes/run_recording.py): the MCAP file, and the message definitions and CDR of
            # rosbags' type store, which jepa-mpc import-bag reads them back with
            "mcap>=1.6,<1.7",
            "rosbags==0.11.*",
        ],
    },
    entry_points={
        "console_scripts": [
            "jepa-mpc = jepa_mpc.cli:main",
            "planner_node = ros_nodes.planner_node:main",
            "sim_node = ros_nodes.sim_node:main",
        ],
    },
    zip_safe=True,
)

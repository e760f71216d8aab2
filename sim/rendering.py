"""Camera rendering for the tasks, with a clear error when no headless OpenGL backend works.

The backend (EGL, else OSMesa) is chosen by sim/gl_backend.py when ``sim`` is imported, before
mujoco; every module of ``sim`` that uses mujoco imports it through this module. If the chosen GL
library fails to load, mujoco is still imported (rendering disabled) so that physics-only use
(``SimConfig(render_images=False)``) keeps working, and asking for images raises the explanation.
"""

from __future__ import annotations

import os
import sys

import numpy as np

from sim.gl_backend import GL_BACKEND, MUJOCO_IMPORTED_FIRST

# The process that made an EGL context here. A process forked from it hangs at its first render
# (EGL's state does not survive a fork); CameraRenderer refuses to render there instead.
_EGL_CONTEXT_PID: int | None = None

try:
    import mujoco  # noqa: E402  (after the backend choice, on purpose)

    _GL_IMPORT_ERROR: BaseException | None = None
except Exception as error:  # the chosen GL library is missing: PyOpenGL fails inside mujoco's import
    # Keep physics usable (render_images=False): re-import mujoco with rendering disabled, and explain
    # the GL problem when something asks for an image.
    _GL_IMPORT_ERROR = error
    for name in [n for n in sys.modules if n.split(".")[0] in ("mujoco", "OpenGL")]:
        del sys.modules[name]
    os.environ["MUJOCO_GL"] = "disable"
    import mujoco


def gl_error_message(error: BaseException) -> str:
    if MUJOCO_IMPORTED_FIRST:
        return (
            f"MuJoCo rendering failed ({type(error).__name__}: {error}): mujoco was imported before sim, so it "
            "picked its OpenGL backend without MUJOCO_GL. Import sim before mujoco, or set MUJOCO_GL=egl "
            "(or osmesa) in the environment."
        )
    return (
        f"Could not create an OpenGL context for MuJoCo rendering (MUJOCO_GL={GL_BACKEND!r}): "
        f"{type(error).__name__}: {error}. Headless rendering needs EGL (Debian/Ubuntu: apt install libegl1, "
        "then MUJOCO_GL=egl) or OSMesa (apt install libosmesa6, then MUJOCO_GL=osmesa PYOPENGL_PLATFORM=osmesa), "
        "set before Python imports mujoco. Without a display, pass SimConfig(render_images=False) to run the "
        "tasks without images."
    )


def forked_after_egl_message() -> str:
    return (
        f"this process (pid {os.getpid()}) was forked from process {_EGL_CONTEXT_PID}, which had already rendered "
        "with EGL: rendering here would hang for ever. Start worker processes with the spawn method instead: "
        'gymnasium.make_vec(..., vectorization_mode="async", vector_kwargs={"context": "spawn"}), '
        'multiprocessing.get_context("spawn"); or render in the workers only (docs/sim.md, "Cameras")'
    )


class CameraRenderer:
    """Renders named cameras of one model to uint8 images ``[H, W, 3]``; one GL context, reused.

    The GL context is created at the first :meth:`render`, in the process that renders, never in
    ``__init__``: an env built before a fork (``gymnasium.make_vec(..., vectorization_mode="async")``
    builds one in the parent to read its spaces, and the workers are forked by default) must not hand
    an EGL context to its children, where the first use of the inherited context hangs. A process
    forked after its parent rendered with EGL hangs at its first render as well, even with a context
    of its own: there the first render raises ``RuntimeError`` saying to use the spawn start method.
    ``RuntimeError`` (with :func:`gl_error_message`) at the first render if no GL backend works.
    """

    def __init__(self, model: mujoco.MjModel, height: int, width: int):
        if _GL_IMPORT_ERROR is not None:  # known without touching GL: fail at construction, as early as possible
            raise RuntimeError(gl_error_message(_GL_IMPORT_ERROR)) from _GL_IMPORT_ERROR
        self._model, self._height, self._width = model, height, width
        self._renderer: mujoco.Renderer | None = None
        self._options = mujoco.MjvOption()
        self._options.geomgroup[3] = 0  # group 3 holds debug sites (the TCP); never render them

    def _gl_renderer(self) -> mujoco.Renderer:
        global _EGL_CONTEXT_PID
        egl = GL_BACKEND == "egl"
        if egl and _EGL_CONTEXT_PID not in (None, os.getpid()):
            raise RuntimeError(forked_after_egl_message())
        if self._renderer is None:
            try:
                self._renderer = mujoco.Renderer(self._model, height=self._height, width=self._width)
            except Exception as error:  # the GL stack raises many types (ImportError, OSError, RuntimeError, ...)
                raise RuntimeError(gl_error_message(error)) from error
            if egl:
                _EGL_CONTEXT_PID = os.getpid()
        return self._renderer

    def render(self, data: mujoco.MjData, camera: str) -> np.ndarray:
        """The image of ``camera`` for the current ``data`` (call mj_forward first), uint8 ``[H, W, 3]``."""
        renderer = self._gl_renderer()
        renderer.update_scene(data, camera=camera, scene_option=self._options)
        return renderer.render().copy()

    def close(self) -> None:
        if self._renderer is not None:
            self._renderer.close()
            self._renderer = None

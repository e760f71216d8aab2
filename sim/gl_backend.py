"""Choose MuJoCo's headless OpenGL backend (EGL, else OSMesa) before mujoco is imported.

MuJoCo reads ``MUJOCO_GL`` (and PyOpenGL ``PYOPENGL_PLATFORM``) once, when ``mujoco`` is first
imported. ``import sim`` runs :func:`choose_gl_backend`, which only sets those environment variables
(a value the user set is kept), so that a later ``import mujoco`` anywhere picks a headless backend.
"""

from __future__ import annotations

import ctypes.util
import os
import sys


def choose_gl_backend() -> str:
    """Set ``MUJOCO_GL`` to ``egl`` if libEGL is installed, else ``osmesa`` if libOSMesa is; return it."""
    backend = os.environ.get("MUJOCO_GL", "").strip().lower()
    if not backend:
        if ctypes.util.find_library("EGL"):
            backend = "egl"
        elif ctypes.util.find_library("OSMesa"):
            backend = "osmesa"
        else:
            return ""  # rendering will fail with the message of sim.rendering.gl_error_message
        os.environ["MUJOCO_GL"] = backend
    if backend in ("egl", "osmesa"):
        os.environ.setdefault("PYOPENGL_PLATFORM", backend)
    return backend


GL_BACKEND = choose_gl_backend()
# mujoco imported before this module ran keeps the backend it chose then (glfw when MUJOCO_GL was unset).
MUJOCO_IMPORTED_FIRST = "mujoco" in sys.modules

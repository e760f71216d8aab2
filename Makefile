# Two entry points for a newcomer: `make demo` and `make test`. Both create .venv when missing.
PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
# The CPU build of torch that lies on these machines' disk. A GPU user installs a CUDA build into
# .venv first (README, "GPU"); `pip install` below then keeps it, since setup.py asks only torch>=2.4.
TORCH_SPEC ?= torch==2.13.0
export MUJOCO_GL ?= egl
export PYOPENGL_PLATFORM ?= egl

.PHONY: venv demo test default-model language-model bench clean

# The ray extra is for `make test` (tests/test_ray_backend.py); `make demo` and the default commands never import it.
$(VENV)/.installed: setup.py
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -c "import torch" 2>/dev/null || $(PY) -m pip install --quiet "$(TORCH_SPEC)"
	$(PY) -m pip install --quiet -e ".[test,ros,bags,ray]"
	touch $@

venv: $(VENV)/.installed

demo: venv
	$(VENV)/bin/jepa-mpc demo --out demo_out

# The linter and the formatter (ruff.toml) first: they take seconds, the suite minutes. The suite runs in
# TEST_WORKERS pytest-xdist processes, a test file to a process (its module fixtures built once): one process
# kept one of CI's two cores busy on average (docs/benchmarks.md, "Test suite"). TEST_WORKERS=0: one process.
TEST_WORKERS ?= 2
test: venv
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/lint-imports
	$(PY) -m pytest -q -n $(TEST_WORKERS) --dist loadfile tests

# `make default-model DEVICE=cuda` trains and evaluates on a GPU (a CUDA build of torch in .venv, see README);
# WORKERS collection processes record the same episodes as one: 2 for these 2 cores, 16 on a 16-core GPU box.
DEVICE ?= cpu
WORKERS ?= 2
default-model: venv
	$(VENV)/bin/jepa-mpc make-default-model --install --device $(DEVICE) --workers $(WORKERS)

# The language model (goals in words) on top of the default model: worldmodel/language_model (README there).
language-model: venv
	$(VENV)/bin/jepa-mpc make-language-model --install --device $(DEVICE) --workers $(WORKERS)

bench: venv
	$(PY) bench/plan_speed.py

clean:
	rm -rf $(VENV) demo_out .pytest_cache

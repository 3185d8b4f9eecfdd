#!/usr/bin/env bash
# The wheels that executing the book needs on a GPU machine without internet whose image already holds torch, timm,
# numpy, scipy, pandas, matplotlib, scikit-learn, scikit-image, tqdm, pyyaml, requests, psutil and pygments but none
# of the Jupyter packages: papermill, the kernel, nbformat/nbclient, myst-nb's glue (not Sphinx: the record executes
# the notebooks, it does not build HTML), ipywidgets and mlxtend. Run here, where pip reaches the package registry:
#
#   bash bench/device_wheels.sh                 # into .whl/ for CPython 3.12 on x86-64 Linux (git ignores .whl/)
#   PYVER=3.11 WHL=/tmp/w bash bench/device_wheels.sh   # for another Python (the CPU rehearsal in the tests)
#
# Then, on the machine, before the command (the wheels are pure Python but for pyzmq and rpds-py):
#   python3 -m pip install -q --no-index --no-deps --no-compile --target /tmp/site .whl/*.whl && export PYTHONPATH=/tmp/site
set -euo pipefail
cd "$(dirname "$0")/.."
PYVER=${PYVER:-3.12}
WHL=${WHL:-.whl}
PY=${PY:-python3}
# by name, without their dependencies: the closure of papermill, ipykernel, ipywidgets and myst-nb's glue, less what
# the image holds (myst-nb's glue imports docutils, not Sphinx); checked by rehearsing bench/gpu_record.sh at the
# smoke scale in a Python environment that holds only what the image holds
PACKAGES=(papermill entrypoints tenacity nbclient nbformat fastjsonschema jsonschema jsonschema-specifications
  referencing rpds-py jupyter-client jupyter-core platformdirs traitlets pyzmq tornado
  ipykernel comm debugpy matplotlib-inline nest-asyncio2 ipython ipython-pygments-lexers jedi parso prompt-toolkit
  wcwidth pexpect ptyprocess stack-data asttokens executing pure-eval myst-nb ipywidgets widgetsnbextension
  jupyterlab-widgets mlxtend docutils)
PLAT=()
for p in manylinux_2_28_x86_64 manylinux_2_27_x86_64 manylinux_2_26_x86_64 manylinux_2_17_x86_64 manylinux2014_x86_64 \
         manylinux1_x86_64; do PLAT+=(--platform "$p"); done
mkdir -p "$WHL"
$PY -m pip download -q --no-deps --only-binary=:all: --python-version "$PYVER" --implementation cp "${PLAT[@]}" \
  -d "$WHL" "${PACKAGES[@]}"
echo "$(ls "$WHL"/*.whl | wc -l) wheels, $(du -sh "$WHL" | cut -f1), in $WHL for CPython $PYVER"

"""``python -m jepa_mpc COMMAND ...`` = ``jepa-mpc COMMAND ...`` (what ``torchrun -m jepa_mpc train ...`` runs)."""

import sys

from jepa_mpc.cli import main

sys.exit(main())

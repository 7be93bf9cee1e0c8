"""``python -m jwst_soss_custom.datasets``: the ``soss_simulate`` command."""

import sys

from jwst_soss_custom.datasets.cli import main

sys.exit(main())

"""``python -m analysis.seg_errors GT.json DT.json -o OUT.json`` (same as ``dcl-seg-errors``)."""

import sys

from analysis.seg_errors.cli import main

sys.exit(main())

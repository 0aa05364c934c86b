import sys

from awasi.cli import main

sys.exit(main())

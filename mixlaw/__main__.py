import sys

from mixlaw.cli.main import main

sys.exit(main())

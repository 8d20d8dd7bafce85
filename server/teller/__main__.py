import sys

from branchline.server.teller.main import main

sys.exit(main())

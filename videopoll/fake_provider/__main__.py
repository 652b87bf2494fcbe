import sys

from videopoll.fake_provider.server import main

sys.exit(main())

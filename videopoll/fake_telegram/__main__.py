import sys

from videopoll.fake_telegram.server import main

sys.exit(main())

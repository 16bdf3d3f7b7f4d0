from pocketgan.cli import main

raise SystemExit(main())

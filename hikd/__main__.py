from hikd.cli import main

raise SystemExit(main())

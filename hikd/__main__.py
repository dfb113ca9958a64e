from hikd.cli.main import main

raise SystemExit(main())

from emoscope.cli import main

raise SystemExit(main())

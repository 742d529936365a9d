from drsync.cli.main import main

main()

from drsync.cli import main

main()

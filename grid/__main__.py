from grid.cli import main

main()

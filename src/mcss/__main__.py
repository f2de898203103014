from mcss.cli import main

main()

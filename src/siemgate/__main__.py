from siemgate.cli.main import main

main()

from navigation.cli import main

main()

from pocketgan.cli import main

main()

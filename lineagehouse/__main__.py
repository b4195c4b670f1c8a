from lineagehouse.cli import main

main()

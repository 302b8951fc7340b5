from pareto.cli import main

main()

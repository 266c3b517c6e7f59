from opsledger.cli.main import run

run()

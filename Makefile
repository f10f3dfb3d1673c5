.PHONY: run test check
run:   ## install and start the service on SQLite (prints the first admin password)
	bash scripts/run.sh
test:  ## install everything and run the whole test suite
	bash scripts/test.sh
check: ## check the form definitions
	.venv/bin/kakanai check

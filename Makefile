.PHONY: run test check lock
# make run HOST=0.0.0.0 PORT=8080 (defaults 127.0.0.1 and 8000, or KAKANAI_HOST / KAKANAI_PORT)
run:   ## start the service on SQLite (installs only what changed; prints the first admin password)
	$(if $(HOST),KAKANAI_HOST=$(HOST)) $(if $(PORT),KAKANAI_PORT=$(PORT)) bash scripts/run.sh
test:  ## install everything the tests need and run the whole test suite
	bash scripts/test.sh
check: ## check the form definitions (and the database, when KAKANAI_DATABASE_URL is set)
	.venv/bin/kakanai check
lock:  ## refresh requirements.lock and requirements-test.lock from pyproject.toml
	bash scripts/lock.sh

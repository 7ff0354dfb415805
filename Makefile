.PHONY: setup demo test benchmark clean

setup:
	@bash scripts/setup.sh

demo: setup
	@bash scripts/demo.sh

test:
	@bash scripts/setup.sh test
	@if [ ! -d ../shared ]; then echo "note: ../shared is absent; tests that need it are skipped"; fi
	.venv/bin/python -m pytest -q tests

benchmark: setup
	.venv/bin/python benchmarks/speed.py

clean:
	rm -rf demo .pytest_cache .config

.PHONY: setup demo test test-qiime2-2024.10 benchmark clean

setup:
	@bash scripts/setup.sh

demo: setup
	@bash scripts/demo.sh

test:
	@bash scripts/setup.sh test
	@if [ ! -d ../shared ]; then echo "note: ../shared is absent; tests that need it are skipped"; fi
	.venv/bin/python -m pytest -q tests

# The same suite on QIIME 2 2024.10 (built from the release's sources in ../shared/vendor/qiime2-2024.10)
test-qiime2-2024.10:
	@if [ ! -d ../shared/vendor/qiime2-2024.10 ]; then \
	  echo "note: ../shared/vendor/qiime2-2024.10 is absent; the QIIME 2 2024.10 lane is skipped (it is built from the release's source archives kept there)"; \
	else \
	  bash scripts/setup-qiime2-2024.10.sh test && .venv-qiime2-2024.10/bin/python -m pytest -q tests; \
	fi

benchmark: setup
	.venv/bin/python benchmarks/speed.py

clean:
	rm -rf demo .pytest_cache .config

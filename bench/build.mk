# make bench: every benchmark side by side with its peers (not part of make test).

.PHONY: bench
bench: deps all
	bench/run

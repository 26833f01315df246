# viewmig — PGXS build of the C++ extension, plus the test and demo entry points.
# `make && make install` builds and installs; `make test` runs every suite; `make demo`
# runs the demo on a throwaway cluster; `make bench` runs the benchmarks.

EXTENSION   = viewmig
MODULE_big  = viewmig
DATA        = src/sql/viewmig--1.0.sql
PGFILEDESC  = "viewmig - online replay of event-sourced projectors"

CORE_SRCS = $(wildcard src/core/*.cpp)
PG_SRCS   = $(wildcard src/pg/*.cpp)
BGW_SRCS  = $(wildcard src/bgw/*.cpp)
OBJS      = $(CORE_SRCS:.cpp=.o) $(PG_SRCS:.cpp=.o) $(BGW_SRCS:.cpp=.o)

PG_CPPFLAGS = -I$(srcdir)/src
PG_CXXFLAGS = -std=c++17 -Wno-register -fno-omit-frame-pointer
SHLIB_LINK  = -lstdc++

# pg_regress suites: sql/<name>.sql with expected/<name>.out
REGRESS      = setup lifecycle errors quoting privileges

ISOLATION      = increment_during_inserts complete_during_inserts
ISOLATION_OPTS =

# C++ code gains nothing from JIT inlining, and clang may not be installed.
override with_llvm = no

PG_CONFIG ?= pg_config
PGXS := $(shell $(PG_CONFIG) --pgxs 2>/dev/null)
ifneq ($(wildcard $(PGXS)),)
include $(PGXS)
# The isolation specs live under test/isolation (specs/, expected/).
ISOLATION_OPTS += --inputdir=$(srcdir)/test/isolation --outputdir=output_iso
else
# On a fresh machine `make test` / `make demo` install postgresql-server-dev-15 first.
$(info PGXS not found: run `make test` or `make demo`, which install the build dependencies)
endif

.PHONY: test demo bench unit
unit:
	cmake -S $(srcdir) -B build -DCMAKE_BUILD_TYPE=Release >/dev/null
	cmake --build build -j2
	cd build && ctest --output-on-failure

test:
	test/install_deps.sh
	test/run_all.sh

demo:
	test/install_deps.sh
	$(MAKE) -s
	$(MAKE) -s install
	test/demo.sh

bench:
	bench/run.sh

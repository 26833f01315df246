# viewmig — PGXS build of the C++ extension, plus the test and demo entry points.
# `make && make install` builds and installs; `make test` runs every suite; `make demo`
# runs the demo on a throwaway cluster; `make bench` runs the benchmarks; `make tap` runs the
# TAP suite (test/tap) against the installed extension.

EXTENSION   = viewmig
MODULE_big  = viewmig
DATA        = src/sql/viewmig--1.0.sql src/sql/viewmig--1.0--1.1.sql
PGFILEDESC  = "viewmig - online replay of event-sourced projectors"

CORE_SRCS = $(wildcard src/core/*.cpp)
PG_SRCS   = $(wildcard src/pg/*.cpp)
BGW_SRCS  = $(wildcard src/bgw/*.cpp)
OBJS      = $(CORE_SRCS:.cpp=.o) $(PG_SRCS:.cpp=.o) $(BGW_SRCS:.cpp=.o)

# The catalog version the library is built for (the launcher waits for ALTER EXTENSION UPDATE).
VIEWMIG_VERSION = $(shell sed -n "s/^default_version *= *'\(.*\)'.*/\1/p" $(srcdir)/viewmig.control)
PG_CPPFLAGS = -I$(srcdir)/src -DVIEWMIG_VERSION='"$(VIEWMIG_VERSION)"'
# -MMD -MP: each object's header dependencies (PGXS does not track them), included below.
PG_CXXFLAGS = -std=c++17 -Wno-register -fno-omit-frame-pointer -MMD -MP
SHLIB_LINK  = -lstdc++

# pg_regress suites: sql/<name>.sql with expected/<name>.out
REGRESS      = setup lifecycle errors quoting privileges jobs schema_migrations view_schema_migrations batch_projectors declarative_projectors swap_safety bad_events stuck_states security

ISOLATION      = increment_during_inserts complete_during_inserts job_notifications view_schema_migration_during_inserts
ISOLATION_OPTS =

# C++ code gains nothing from JIT inlining, and clang may not be installed.
override with_llvm = no

PG_CONFIG ?= pg_config
PGXS := $(shell $(PG_CONFIG) --pgxs 2>/dev/null)
ifneq ($(wildcard $(PGXS)),)
include $(PGXS)
-include $(OBJS:.o=.d)
EXTRA_CLEAN += $(OBJS:.o=.d)
src/bgw/launcher.o: $(srcdir)/viewmig.control
# The isolation specs live under test/isolation (specs/, expected/).
ISOLATION_OPTS += --inputdir=$(srcdir)/test/isolation --outputdir=output_iso
else
# On a fresh machine `make test` / `make demo` install postgresql-server-dev-15 first.
$(info PGXS not found: run `make test` or `make demo`, which install the build dependencies)
endif

.PHONY: test demo bench unit tap
unit:
	cmake -S $(srcdir) -B build -DCMAKE_BUILD_TYPE=Release >/dev/null
	cmake --build build -j2
	cd build && ctest --output-on-failure

test:
	test/install_deps.sh
	test/run_all.sh

# TAP tests (test/tap/t/*.pl, prove + PostgreSQL::Test::Cluster): clusters preloading viewmig,
# the launcher and its jobs, crashes, restarts, a standby. Uses the installed build (no install
# here); as root it runs the tests as user postgres (initdb refuses root). TAP_TESTS="002_x.pl ..."
# runs some files only.
tap:
	test/tap/run.sh $(TAP_TESTS)

demo:
	test/install_deps.sh
	$(MAKE) -s
	$(MAKE) -s install
	test/demo.sh

bench:
	bench/run.sh

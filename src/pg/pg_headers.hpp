// The one place that pulls in PostgreSQL's C headers for C++ translation units. PostgreSQL's
// headers use `register` and a few C-isms; keep the pragmas here rather than in every file.
#pragma once

extern "C" {
#include "postgres.h"
#include "fmgr.h"
}

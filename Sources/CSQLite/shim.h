#include <sqlite3.h>

/// sqlite3_db_config for the on/off options (SQLITE_DBCONFIG_DEFENSIVE, …): the call is
/// variadic, which Swift cannot make.
static inline int bh_sqlite3_db_config_flag(sqlite3 *db, int op, int on) {
    return sqlite3_db_config(db, op, on, (int *)0);
}

/*
 * store_crm.c - the CRM card's rows (crm.h): the cache of what the CRM
 * answered for an e-mail, the e-mails a conversation's person is looked up
 * by, and the card found and shown for a conversation.
 */
#include "store.h"
#include "store_sql.h"

#include <stdlib.h>

int
br_store_crm_cache_get(struct br_store *s, const char *email, int64_t newer_than_ms, char **card)
{
    sqlite3_stmt *st = br_sql_bind(s, "SELECT card FROM crm_cache WHERE email=? AND fetched_at>=?", "ti", email,
                                   newer_than_ms);
    int rc = br_sql_row(s, st);

    *card = NULL;
    if (rc == 0)
        *card = br_sql_col_str(st, 0);
    sqlite3_reset(st);
    return rc;
}

int
br_store_crm_cache_put(struct br_store *s, const char *email, const char *card, int64_t at_ms)
{
    return br_sql_done(s, br_sql_bind(s, "INSERT INTO crm_cache(email, card, fetched_at) VALUES(?,?,?) "
                                         "ON CONFLICT(email) DO UPDATE SET card=excluded.card, "
                                         "fetched_at=excluded.fetched_at",
                                      "tti", email, card, at_ms));
}

int
br_store_crm_cache_prune(struct br_store *s, int64_t older_than_ms)
{
    return br_sql_done(s, br_sql_bind(s, "DELETE FROM crm_cache WHERE fetched_at<?", "i", older_than_ms));
}

json_t *
br_store_crm_emails(struct br_store *s, int64_t person_id, const char *domain, size_t company_max)
{
    json_t *out = br_store_person_emails(s, person_id, false), *more;
    size_t i;
    json_t *e;

    if (domain == NULL || company_max == 0)
        return out;
    /* Colleagues: e-mails of other persons at the same company domain, oldest known first. */
    more = br_sql_column_list(s, br_sql_bind(s, "SELECT email FROM person_emails WHERE person_id<>? "
                                                "AND email LIKE '%@' || ? ESCAPE '\\' "
                                                "ORDER BY added_at, email LIMIT ?",
                                             "iti", person_id, domain, (int64_t)company_max));
    json_array_foreach(more, i, e)
        json_array_append(out, e);
    json_decref(more);
    return out;
}

int
br_store_conv_crm(struct br_store *s, int64_t conv_id, int *state, char **card, char **shown)
{
    sqlite3_stmt *st = br_sql_bind(s, "SELECT crm_state, crm_card, crm_shown FROM conversations WHERE id=?", "i",
                                   conv_id);
    int rc = br_sql_row(s, st);

    *state = 0;
    *card = *shown = NULL;
    if (rc == 0) {
        *state = sqlite3_column_int(st, 0);
        *card = br_sql_col_str(st, 1);
        *shown = br_sql_col_str(st, 2);
    }
    sqlite3_reset(st);
    return rc;
}

int
br_store_conv_set_crm(struct br_store *s, int64_t conv_id, int state, const char *card)
{
    return br_sql_done(s, br_sql_bind(s, "UPDATE conversations SET crm_state=?, crm_card=? WHERE id=?", "nti",
                                      state, card, conv_id));
}

int
br_store_conv_set_crm_state(struct br_store *s, int64_t conv_id, int state)
{
    return br_sql_done(s, br_sql_bind(s, "UPDATE conversations SET crm_state=? WHERE id=?", "ni", state, conv_id));
}

int
br_store_conv_set_crm_shown(struct br_store *s, int64_t conv_id, const char *shown)
{
    return br_sql_done(s, br_sql_bind(s, "UPDATE conversations SET crm_shown=? WHERE id=?", "ti", shown, conv_id));
}

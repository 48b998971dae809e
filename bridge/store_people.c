/*
 * store_people.c - the people the bridge knows: visitors (conversations,
 * their devices and chats, persons and their e-mails, company contacts),
 * merging two of them and undoing it, the identity map as JSON, and the
 * staff (the employees' tracker users, Chatra agents' e-mails).
 */
#include "store.h"
#include "store_sql.h"

#include <jansson.h>
#include <stdlib.h>
#include <string.h>

/* ---- conversations ---- */

void
br_conv_dispose(struct br_conv *c)
{
    free(c->channel);
    free(c->client_id);
    free(c->chat_id);
    free(c->name);
    free(c->email);
    free(c->phone);
    free(c->visitor_json);
    free(c->contact_id);
    free(c->profile_json);
    free(c->company_id);
    memset(c, 0, sizeof(*c));
}

#define CONV_COLS \
    "c.id, c.channel, c.client_id, c.chat_id, c.name, c.email, c.phone, c.visitor_json, " \
    "(SELECT contact_id FROM persons p WHERE p.id=c.person_id), c.gen, c.person_id, c.merged_into, " \
    "c.profile_json, c.profile_state, (SELECT contact_made FROM persons p WHERE p.id=c.person_id), " \
    "(SELECT company_id FROM persons p WHERE p.id=c.person_id)"

static int
conv_row(struct br_store *s, sqlite3_stmt *st, struct br_conv *c)
{
    int rc = br_sql_row(s, st);
    if (rc)
        return rc;
    c->id = sqlite3_column_int64(st, 0);
    c->channel = br_sql_col_str(st, 1);
    c->client_id = br_sql_col_str(st, 2);
    c->chat_id = br_sql_col_str(st, 3);
    c->name = br_sql_col_str(st, 4);
    c->email = br_sql_col_str(st, 5);
    c->phone = br_sql_col_str(st, 6);
    c->visitor_json = br_sql_col_str(st, 7);
    c->contact_id = br_sql_col_str(st, 8);
    c->gen = sqlite3_column_int(st, 9);
    c->person_id = sqlite3_column_int64(st, 10);
    c->merged_into = sqlite3_column_int64(st, 11);
    c->profile_json = br_sql_col_str(st, 12);
    c->profile_state = sqlite3_column_int(st, 13);
    c->contact_made = sqlite3_column_int(st, 14) != 0;
    c->company_id = br_sql_col_str(st, 15);
    sqlite3_reset(st);
    return 0;
}

int
br_store_conv_by_client(struct br_store *s, const char *channel, const char *client_id, struct br_conv *out)
{
    return conv_row(s, br_sql_bind(s, "SELECT " CONV_COLS " FROM conv_clients k JOIN conversations c ON c.id=k.conv_id "
                                      "WHERE k.channel=? AND k.client_id=?", "tt", channel, client_id), out);
}

int
br_store_conv_get(struct br_store *s, int64_t id, struct br_conv *out)
{
    return conv_row(s, br_sql_bind(s, "SELECT " CONV_COLS " FROM conversations c WHERE c.id=?", "i", id), out);
}

int
br_store_person_create(struct br_store *s, int64_t *id)
{
    if (br_sql_done(s, br_sql_bind(s, "INSERT INTO persons(created_at) VALUES(?)", "i", br_now_ms())))
        return BR_EIO;
    *id = sqlite3_last_insert_rowid(s->db);
    return 0;
}

int
br_store_person_of_email(struct br_store *s, const char *email, int64_t *person_id, bool *verified)
{
    sqlite3_stmt *st = br_sql_bind(s, "SELECT person_id, verified FROM person_emails WHERE email=?", "t", email);
    int rc = br_sql_row(s, st);
    if (rc)
        return rc;
    *person_id = sqlite3_column_int64(st, 0);
    if (verified)
        *verified = sqlite3_column_int(st, 1) != 0;
    sqlite3_reset(st);
    return 0;
}

int
br_store_person_add_email(struct br_store *s, int64_t person_id, const char *email, bool verified)
{
    /* A verified sighting upgrades an unverified one; the owner never changes here (that is a merge). */
    return br_sql_done(s, br_sql_bind(s, "INSERT INTO person_emails(email, person_id, verified, added_at) "
                                         "VALUES(?,?,?,?) "
                                         "ON CONFLICT(email) DO UPDATE SET verified=max(verified, excluded.verified) "
                                         "WHERE person_id=excluded.person_id",
                                      "tini", email, person_id, (int)verified, br_now_ms()));
}

json_t *
br_store_person_emails(struct br_store *s, int64_t person_id, bool verified_only)
{
    return br_sql_column_list(s, br_sql_bind(s, "SELECT email FROM person_emails WHERE person_id=? AND verified>=? "
                                                "ORDER BY added_at, email",
                                             "in", person_id, (int)verified_only));
}

int
br_store_conv_of_person(struct br_store *s, const char *channel, int64_t person_id, struct br_conv *out)
{
    return conv_row(s, br_sql_bind(s, "SELECT " CONV_COLS " FROM conversations c WHERE c.channel=? AND c.person_id=? "
                                      "AND c.merged_into IS NULL ORDER BY c.id LIMIT 1",
                                   "ti", channel, person_id), out);
}

int
br_store_conv_create(struct br_store *s, const char *channel, const char *client_id, int64_t *id)
{
    int64_t person;
    int rc = br_store_person_create(s, &person);
    return rc ? rc : br_store_conv_create_for_person(s, channel, client_id, person, id);
}

int
br_store_conv_create_for_person(struct br_store *s, const char *channel, const char *client_id, int64_t person_id,
                                int64_t *id)
{
    int64_t now = br_now_ms();
    if (br_sql_done(s, br_sql_bind(s, "INSERT INTO conversations(channel, person_id, client_id, created_at, "
                                      "updated_at) VALUES(?,?,?,?,?)",
                                   "titii", channel, person_id, client_id, now, now)))
        return BR_EIO;
    *id = sqlite3_last_insert_rowid(s->db);
    return br_store_conv_add_client(s, *id, channel, client_id);
}

int
br_store_conv_add_client(struct br_store *s, int64_t conv_id, const char *channel, const char *client_id)
{
    return br_sql_done(s, br_sql_bind(s, "INSERT INTO conv_clients(channel, client_id, conv_id) VALUES(?,?,?) "
                                         "ON CONFLICT(channel, client_id) DO UPDATE SET conv_id=excluded.conv_id",
                                      "tti", channel, client_id, conv_id));
}

int
br_store_device_chat(struct br_store *s, const char *channel, const char *client_id, const char *chat_id,
                     char **previous)
{
    sqlite3_stmt *st = br_sql_bind(s, "SELECT chat_id FROM conv_clients WHERE channel=? AND client_id=?", "tt", channel,
                                   client_id);
    *previous = NULL;
    if (br_sql_row(s, st) == 0) {
        *previous = br_sql_col_str(st, 0);
        sqlite3_reset(st);
    }
    if (chat_id == NULL)
        return 0;
    return br_sql_done(s, br_sql_bind(s, "UPDATE conv_clients SET chat_id=? WHERE channel=? AND client_id=?", "ttt",
                                      chat_id, channel, client_id));
}

int
br_store_conv_update_visitor(struct br_store *s, int64_t conv_id, const char *client_id, const char *chat_id,
                             const char *name, const char *email, const char *phone, const char *visitor_json)
{
    /* Known values are kept when a later webhook does not repeat them. */
    return br_sql_done(s, br_sql_bind(s, "UPDATE conversations SET client_id=coalesce(?, client_id), "
                                         "chat_id=coalesce(?, chat_id), "
                                         "name=coalesce(?, name), email=coalesce(?, email), phone=coalesce(?, phone), "
                                         "visitor_json=coalesce(?, visitor_json), updated_at=? WHERE id=?",
                                      "ttttttii", client_id, chat_id, name, email, phone, visitor_json, br_now_ms(),
                                      conv_id));
}

int
br_store_conv_set_contact(struct br_store *s, int64_t conv_id, const char *contact_id, bool made)
{
    return br_sql_done(s, br_sql_bind(s, "UPDATE persons SET contact_id=?, contact_made=? "
                                         "WHERE id=(SELECT person_id FROM conversations WHERE id=?)",
                                      "tni", contact_id, (int)made, conv_id));
}

int
br_store_conv_set_profile(struct br_store *s, int64_t conv_id, int state, const char *profile_json)
{
    return br_sql_done(s, br_sql_bind(s, "UPDATE conversations SET profile_state=?, "
                                         "profile_json=coalesce(?, profile_json) WHERE id=?",
                                      "nti", state, profile_json, conv_id));
}

int
br_store_conv_set_company(struct br_store *s, int64_t conv_id, const char *company_id)
{
    return br_sql_done(s, br_sql_bind(s, "UPDATE persons SET company_id=? "
                                         "WHERE id=(SELECT person_id FROM conversations WHERE id=?)",
                                      "ti", company_id, conv_id));
}

int
br_store_company_get(struct br_store *s, const char *domain, char **contact_id)
{
    sqlite3_stmt *st = br_sql_bind(s, "SELECT contact_id FROM companies WHERE domain=?", "t", domain);
    int rc = br_sql_row(s, st);
    if (rc)
        return rc;
    *contact_id = br_sql_col_str(st, 0);
    sqlite3_reset(st);
    return 0;
}

int
br_store_company_set(struct br_store *s, const char *domain, const char *contact_id)
{
    return br_sql_done(s, br_sql_bind(s, "INSERT INTO companies(domain, contact_id, created_at) VALUES(?,?,?) "
                                         "ON CONFLICT(domain) DO UPDATE SET contact_id=excluded.contact_id",
                                      "tti", domain, contact_id, br_now_ms()));
}

int
br_store_conv_set_gen(struct br_store *s, int64_t conv_id, int gen)
{
    return br_sql_done(s, br_sql_bind(s, "UPDATE conversations SET gen=?, updated_at=? WHERE id=?", "nii", gen,
                                      br_now_ms(), conv_id));
}

/* ---- merges ---- */

static int
json_exec_text(struct br_store *s, json_t *list, const char *sql, int64_t target)
{
    size_t i;
    json_t *v;
    json_array_foreach(list, i, v) {
        if (br_sql_done(s, br_sql_bind(s, sql, "it", target, json_string_value(v))))
            return BR_EIO;
    }
    return 0;
}

int
br_store_merge(struct br_store *s, int64_t survivor_conv, int64_t merged_conv, const char *email, bool verified,
               int64_t *merge_id)
{
    struct br_conv sc = {0}, mc = {0};
    json_t *clients = NULL, *emails = NULL;
    char *ctext = NULL, *etext = NULL;
    int rc;

    if ((rc = br_store_conv_get(s, survivor_conv, &sc)) || (rc = br_store_conv_get(s, merged_conv, &mc)))
        goto out;
    clients = br_sql_column_list(s, br_sql_bind(s, "SELECT client_id FROM conv_clients WHERE conv_id=?", "i",
                                                merged_conv));
    emails = sc.person_id != mc.person_id
                 ? br_sql_column_list(s, br_sql_bind(s, "SELECT email FROM person_emails WHERE person_id=?", "i",
                                                     mc.person_id))
                 : json_array();
    rc = BR_EIO;
    /* Replies relayed to the merged device's chat come back from it as the survivor's: their echo goes too. */
    if (br_sql_done(s, br_sql_bind(s, "UPDATE conv_clients SET conv_id=? WHERE conv_id=?", "ii", survivor_conv,
                                   merged_conv)) ||
        br_sql_done(s, br_sql_bind(s, "UPDATE relays SET conv_id=? WHERE conv_id=?", "ii", survivor_conv,
                                   merged_conv)) ||
        br_sql_done(s, br_sql_bind(s, "UPDATE conversations SET merged_into=?, updated_at=? WHERE id=?", "iii",
                                   survivor_conv, br_now_ms(), merged_conv)))
        goto out;
    if (sc.person_id != mc.person_id &&
        (br_sql_done(s, br_sql_bind(s, "UPDATE person_emails SET person_id=? WHERE person_id=?", "ii", sc.person_id,
                                    mc.person_id)) ||
         br_sql_done(s, br_sql_bind(s, "UPDATE persons SET merged_into=? WHERE id=?", "ii", sc.person_id,
                                    mc.person_id))))
        goto out;
    /*
     * The merged thread's messages are known to the survivor too, as
     * already handled: a later transcript from that device repeats them.
     */
    if (br_sql_done(s, br_sql_bind(s, "INSERT OR IGNORE INTO messages(conv_id, gen, key, type, agent_id, text, "
                                      "created_at, state) "
                                      "SELECT ?, (SELECT gen FROM conversations WHERE id=?), key, type, agent_id, "
                                      "text, created_at, 2 FROM messages WHERE conv_id=?",
                                   "iii", survivor_conv, survivor_conv, merged_conv)))
        goto out;
    ctext = json_dumps(clients, JSON_COMPACT);
    etext = json_dumps(emails, JSON_COMPACT);
    if (br_sql_done(s, br_sql_bind(s, "INSERT INTO merges(channel, email, verified, survivor_conv, merged_conv, "
                                      "survivor_person, merged_person, clients, emails, at) "
                                      "VALUES(?,?,?,?,?,?,?,?,?,?)",
                                   "ttniiiitti", sc.channel, email, (int)verified, survivor_conv, merged_conv,
                                   sc.person_id, mc.person_id, ctext, etext, br_now_ms())))
        goto out;
    if (merge_id)
        *merge_id = sqlite3_last_insert_rowid(s->db);
    rc = 0;
out:
    free(ctext);
    free(etext);
    json_decref(clients);
    json_decref(emails);
    br_conv_dispose(&sc);
    br_conv_dispose(&mc);
    return rc;
}

int
br_store_record_join(struct br_store *s, int64_t conv_id, const char *channel, const char *client_id,
                     const char *email, bool verified, int64_t *merge_id)
{
    json_t *clients = json_pack("[s]", client_id);
    char *ctext = json_dumps(clients, JSON_COMPACT);
    int rc = br_sql_done(s, br_sql_bind(s, "INSERT INTO merges(channel, email, verified, survivor_conv, merged_conv, "
                                           "survivor_person, merged_person, clients, emails, at) "
                                           "VALUES(?,?,?,?,0,(SELECT person_id FROM conversations WHERE id=?),"
                                           "0,?,'[]',?)",
                                        "ttniiti", channel, email, (int)verified, conv_id, conv_id, ctext,
                                        br_now_ms()));
    if (rc == 0 && merge_id)
        *merge_id = sqlite3_last_insert_rowid(s->db);
    free(ctext);
    json_decref(clients);
    return rc;
}

int
br_store_unmerge(struct br_store *s, int64_t merge_id, int64_t *merged_conv)
{
    sqlite3_stmt *st = br_sql_bind(s, "SELECT merged_conv, survivor_person, merged_person, clients, emails, channel, "
                                      "undone_at FROM merges WHERE id=?", "i", merge_id);
    int64_t mconv, sperson, mperson;
    json_t *clients, *emails;
    json_error_t je;
    char *channel;
    bool undone;
    int rc = br_sql_row(s, st);

    if (rc)
        return rc;
    mconv = sqlite3_column_int64(st, 0);
    sperson = sqlite3_column_int64(st, 1);
    mperson = sqlite3_column_int64(st, 2);
    clients = json_loads((const char *)sqlite3_column_text(st, 3), 0, &je);
    emails = json_loads((const char *)sqlite3_column_text(st, 4), 0, &je);
    channel = br_sql_col_str(st, 5);
    undone = sqlite3_column_type(st, 6) != SQLITE_NULL;
    sqlite3_reset(st);
    rc = BR_EEXIST;
    if (!undone && mconv == 0) {
        /* A device that joined on its first webhook: it gets a conversation (and person) of its own. */
        size_t i;
        json_t *v;
        rc = 0;
        json_array_foreach(clients, i, v) {
            if (rc == 0 && mconv == 0)
                rc = br_store_conv_create(s, channel, json_string_value(v), &mconv);
            else if (rc == 0)
                rc = br_store_conv_add_client(s, mconv, channel, json_string_value(v));
        }
        if (rc == 0 && br_sql_done(s, br_sql_bind(s, "UPDATE conversations SET client_id=coalesce((SELECT client_id "
                                                     "FROM conv_clients WHERE conv_id=conversations.id "
                                                     "ORDER BY rowid DESC LIMIT 1), client_id) "
                                                     "WHERE id=(SELECT survivor_conv FROM merges WHERE id=?)",
                                                  "i", merge_id)))
            rc = BR_EIO;
        if (rc == 0 && br_sql_done(s, br_sql_bind(s, "UPDATE merges SET undone_at=?, merged_conv=? WHERE id=?", "iii",
                                                  br_now_ms(), mconv, merge_id)))
            rc = BR_EIO;
    } else if (!undone) {
        size_t i;
        json_t *v;
        rc = 0;
        json_array_foreach(clients, i, v) {
            if (br_sql_done(s, br_sql_bind(s, "UPDATE conv_clients SET conv_id=? WHERE channel=? AND client_id=?",
                                           "itt", mconv, channel, json_string_value(v))))
                rc = BR_EIO;
        }
        /* The survivor writes to its own devices again: the latest one that stayed. */
        if (rc == 0 && br_sql_done(s, br_sql_bind(s, "UPDATE conversations SET client_id=coalesce((SELECT client_id "
                                                     "FROM conv_clients WHERE conv_id=conversations.id "
                                                     "ORDER BY rowid DESC LIMIT 1), client_id) "
                                                     "WHERE id=(SELECT survivor_conv FROM merges WHERE id=?)",
                                                  "i", merge_id)))
            rc = BR_EIO;
        if (rc == 0)
            rc = json_exec_text(s, emails, "UPDATE person_emails SET person_id=? WHERE email=?", mperson);
        /*
         * The merged person's contact was removed from the tracker when it
         * differed from the survivor's: a new one is made when needed.
         */
        if (rc == 0 && mperson != sperson &&
            (br_sql_done(s, br_sql_bind(s, "UPDATE persons SET merged_into=NULL, "
                                           "contact_id=CASE WHEN contact_made=1 AND contact_id<>"
                                           "coalesce((SELECT contact_id FROM persons WHERE id=?), '') "
                                           "THEN NULL ELSE contact_id END WHERE id=?",
                                        "ii", sperson, mperson))))
            rc = BR_EIO;
        if (rc == 0 &&
            (br_sql_done(s, br_sql_bind(s, "UPDATE conversations SET merged_into=NULL WHERE id=?", "i", mconv)) ||
             br_sql_done(s, br_sql_bind(s, "UPDATE merges SET undone_at=? WHERE id=?", "ii", br_now_ms(), merge_id))))
            rc = BR_EIO;
    }
    if (merged_conv)
        *merged_conv = mconv;
    json_decref(clients);
    json_decref(emails);
    free(channel);
    return rc;
}

bool
br_store_merge_undone(struct br_store *s, const char *channel, const char *client_id, const char *email)
{
    /* Either side: a device the merge moved, or one of the thread it was joined into. */
    sqlite3_stmt *st = br_sql_bind(s, "SELECT 1 FROM merges WHERE undone_at IS NOT NULL AND channel=?1 AND email=?2 "
                                      "AND (EXISTS(SELECT 1 FROM json_each(merges.clients) WHERE value=?3) OR "
                                      "survivor_conv=(SELECT conv_id FROM conv_clients WHERE channel=?1 AND client_id=?3)) "
                                      "LIMIT 1",
                                   "ttt", channel, email, client_id);
    bool undone = br_sql_row(s, st) == 0;

    if (undone)
        sqlite3_reset(st);
    return undone;
}

/* Bound client ids are secrets: show only enough to tell devices apart. */
char *
br_store_client_shown(const char *id)
{
    size_t n = id != NULL ? strlen(id) : 0;

    return n > 6 ? br_asprintf("%.4s...(%zu chars)", id, n) : br_strdup("...");
}

static json_t *
masked(const char *id)
{
    char *m = br_store_client_shown(id);
    json_t *v = json_string(m);
    free(m);
    return v;
}

int
br_store_merge_counts(struct br_store *s, br_merge_count_cb cb, void *arg)
{
    /* A join records no merged conversation (br_store_record_join). */
    sqlite3_stmt *st = br_sql_bind(s, "SELECT channel, sum(merged_conv=0), sum(merged_conv<>0) FROM merges "
                                      "GROUP BY channel ORDER BY channel", "");
    int rc;

    while ((rc = br_sql_row(s, st)) == 0)
        cb(arg, (const char *)sqlite3_column_text(st, 0), sqlite3_column_int64(st, 1), sqlite3_column_int64(st, 2));
    return rc == BR_ENOTFOUND ? 0 : rc;
}

int
br_store_identities(struct br_store *s, const char *email, char **json_out)
{
    json_t *out = json_array();
    sqlite3_stmt *st;
    int64_t *ids = NULL;
    size_t n = 0;
    int rc;

    if (email)
        st = br_sql_bind(s, "SELECT person_id FROM person_emails WHERE email=?", "t", email);
    else
        st = br_sql_bind(s, "SELECT id FROM persons WHERE merged_into IS NULL ORDER BY id", "");
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        ids = br_realloc(ids, (n + 1) * sizeof(*ids));
        ids[n++] = sqlite3_column_int64(st, 0);
    }
    sqlite3_reset(st);
    for (size_t i = 0; i < n; i++) {
        json_t *p = json_object(), *arr;
        int r2;
        st = br_sql_bind(s, "SELECT contact_id, merged_into FROM persons WHERE id=?", "i", ids[i]);
        json_object_set_new(p, "person", json_integer(ids[i]));
        if (br_sql_row(s, st) == 0) {
            if (sqlite3_column_type(st, 0) != SQLITE_NULL)
                json_object_set_new(p, "contact", json_string((const char *)sqlite3_column_text(st, 0)));
            if (sqlite3_column_type(st, 1) != SQLITE_NULL)
                json_object_set_new(p, "merged_into_person", json_integer(sqlite3_column_int64(st, 1)));
            sqlite3_reset(st);
        }
        arr = json_array();
        st = br_sql_bind(s, "SELECT email, verified FROM person_emails WHERE person_id=? ORDER BY added_at", "i",
                         ids[i]);
        while ((r2 = sqlite3_step(st)) == SQLITE_ROW)
            json_array_append_new(arr, json_pack("{s:s, s:b}", "email", (const char *)sqlite3_column_text(st, 0),
                                                 "verified", sqlite3_column_int(st, 1)));
        sqlite3_reset(st);
        json_object_set_new(p, "emails", arr);
        arr = json_array();
        st = br_sql_bind(s, "SELECT c.id, c.channel, c.gen, c.merged_into, "
                            "(SELECT task_id FROM tasks t WHERE t.conv_id=c.id AND t.gen=c.gen) "
                            "FROM conversations c WHERE c.person_id=? OR c.id IN (SELECT merged_conv FROM merges "
                            "WHERE survivor_person=? AND undone_at IS NULL) ORDER BY c.id", "ii", ids[i], ids[i]);
        while ((r2 = sqlite3_step(st)) == SQLITE_ROW) {
            json_t *conv = json_pack("{s:I, s:s, s:i}", "conversation", (json_int_t)sqlite3_column_int64(st, 0),
                                     "channel", (const char *)sqlite3_column_text(st, 1), "tasks",
                                     sqlite3_column_int(st, 2));
            if (sqlite3_column_type(st, 3) != SQLITE_NULL)
                json_object_set_new(conv, "merged_into", json_integer(sqlite3_column_int64(st, 3)));
            if (sqlite3_column_type(st, 4) != SQLITE_NULL)
                json_object_set_new(conv, "task", json_string((const char *)sqlite3_column_text(st, 4)));
            json_object_set_new(conv, "devices", json_array());
            json_array_append_new(arr, conv);
        }
        sqlite3_reset(st);
        {
            size_t k;
            json_t *conv;
            json_array_foreach(arr, k, conv) {
                json_t *dev = json_object_get(conv, "devices");
                st = br_sql_bind(s, "SELECT client_id FROM conv_clients WHERE conv_id=? ORDER BY rowid", "i",
                                 (int64_t)json_integer_value(json_object_get(conv, "conversation")));
                while ((r2 = sqlite3_step(st)) == SQLITE_ROW)
                    json_array_append_new(dev, masked((const char *)sqlite3_column_text(st, 0)));
                sqlite3_reset(st);
            }
        }
        json_object_set_new(p, "conversations", arr);
        arr = json_array();
        st = br_sql_bind(s, "SELECT id, at, email, verified, survivor_conv, merged_conv, undone_at FROM merges "
                            "WHERE survivor_person=? OR merged_person=? ORDER BY id", "ii", ids[i], ids[i]);
        while ((r2 = sqlite3_step(st)) == SQLITE_ROW) {
            json_t *m = json_pack("{s:I, s:I, s:s?, s:b, s:I, s:I, s:b}", "merge",
                                  (json_int_t)sqlite3_column_int64(st, 0), "at",
                                  (json_int_t)sqlite3_column_int64(st, 1), "email",
                                  (const char *)sqlite3_column_text(st, 2), "verified", sqlite3_column_int(st, 3),
                                  "survivor_conversation", (json_int_t)sqlite3_column_int64(st, 4),
                                  "merged_conversation", (json_int_t)sqlite3_column_int64(st, 5), "undone",
                                  sqlite3_column_type(st, 6) != SQLITE_NULL);
            /* Every merge is by e-mail so far; the reason is named for the day another kind comes. */
            json_object_set_new(m, "reason", json_string("email"));
            json_object_set_new(m, "undone_at", sqlite3_column_type(st, 6) != SQLITE_NULL
                                                    ? json_integer(sqlite3_column_int64(st, 6))
                                                    : json_null());
            json_array_append_new(arr, m);
        }
        sqlite3_reset(st);
        json_object_set_new(p, "merges", arr);
        json_array_append_new(out, p);
    }
    free(ids);
    *json_out = json_dumps(out, JSON_INDENT(2));
    json_decref(out);
    return 0;
}

/* ---- employees known by e-mail ---- */

int
br_store_user_get(struct br_store *s, const char *tracker, const char *email, char **tracker_user,
                  int64_t *checked_at)
{
    sqlite3_stmt *st = br_sql_bind(s, "SELECT tracker_user, checked_at FROM employee_users WHERE tracker=? AND email=?",
                                   "tt", tracker, email);
    int rc = br_sql_row(s, st);

    *tracker_user = NULL;
    *checked_at = 0;
    if (rc)
        return rc;
    *tracker_user = br_sql_col_str(st, 0);
    *checked_at = sqlite3_column_int64(st, 1);
    sqlite3_reset(st);
    return 0;
}

int
br_store_user_set(struct br_store *s, const char *tracker, const char *email, const char *tracker_user)
{
    return br_sql_done(s, br_sql_bind(s, "INSERT INTO employee_users(tracker, email, tracker_user, checked_at) "
                                         "VALUES(?,?,?,?) "
                                         "ON CONFLICT(tracker, email) DO UPDATE SET "
                                         "tracker_user=excluded.tracker_user, checked_at=excluded.checked_at",
                                      "ttti", tracker, email, tracker_user, br_now_ms()));
}

int
br_store_agent_set(struct br_store *s, const char *channel, const char *agent_id, const char *email)
{
    return br_sql_done(s, br_sql_bind(s, "INSERT INTO chatra_agents(channel, agent_id, email, seen_at) VALUES(?,?,?,?) "
                                         "ON CONFLICT(channel, agent_id) DO UPDATE SET email=excluded.email, "
                                         "seen_at=excluded.seen_at",
                                      "ttti", channel, agent_id, email, br_now_ms()));
}

int
br_store_agent_email(struct br_store *s, const char *channel, const char *agent_id, char **email)
{
    sqlite3_stmt *st = br_sql_bind(s, "SELECT email FROM chatra_agents WHERE channel=? AND agent_id=?", "tt", channel,
                                   agent_id);
    int rc = br_sql_row(s, st);

    *email = NULL;
    if (rc)
        return rc;
    *email = br_sql_col_str(st, 0);
    sqlite3_reset(st);
    return 0;
}

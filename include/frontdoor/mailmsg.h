/* mailmsg: the Internet message (RFC 5322, MIME) of an email notification, as the smtp
 * provider sends it and the file provider spools it.
 *
 * Headers: From, To, Subject (RFC 2047 encoded-words when not plain ASCII), Date,
 * Message-ID `<notification id@sender's domain>` (so a resent notification keeps its id
 * and a reader's client shows it once), MIME-Version, Content-Type text/plain UTF-8,
 * Content-Transfer-Encoding quoted-printable, Auto-Submitted: auto-generated and
 * X-Frontdoor-Template. The body is quoted-printable, so every line is short 7-bit ASCII
 * and no line starts with a dot. Lines end with CRLF.
 *
 * Pure. Nothing that came from outside can add a header: the addresses must be plain
 * (no CR, LF or other controls; the planner accepts only dot-atom addresses), the subject
 * has no line breaks after rendering (template.h) and is encoded when it has anything
 * but printable ASCII.
 */
#ifndef FRONTDOOR_MAILMSG_H
#define FRONTDOOR_MAILMSG_H

#include <stddef.h>
#include <stdint.h>

struct mailmsg_fields {
    const char *from;          /* an address: email.from */
    const char *to;            /* an address */
    const char *subject;       /* rendered, one line, UTF-8 */
    const char *body;          /* rendered, LF line ends, UTF-8 */
    const char *id;            /* the notification id */
    const char *template_name; /* for X-Frontdoor-Template */
    int64_t date_s;            /* Date header, UTC seconds */
};

/* The whole message (malloc'd, NUL-terminated, *len bytes without the NUL), or NULL when
 * an address or the id holds a character that has no place in a header, or out of
 * memory. */
char *mailmsg_build(const struct mailmsg_fields *f, size_t *len);

/* `<id@domain of from>` into out (len >= 300 is always enough). Returns out. */
char *mailmsg_message_id(const char *id, const char *from, char *out, size_t len);

#endif

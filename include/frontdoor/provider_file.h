/* provider_file: the `file` provider (notifications.md; the embedded default and the
 * demo): each message becomes one file in the channel's spool folder.
 *
 *   email: `<notification id>.eml`, the whole Internet message (mailmsg.h) as the smtp
 *          provider would send it;
 *   sms:   `<notification id>.sms`, lines `To:`, `Template:`, `Language:`, `Reference:`,
 *          a blank line and the text.
 *
 * Written atomically: to `.<id>.tmp` in the same folder, fsync'd, then renamed, so a
 * reader never sees half a message and a crash leaves at most a dot-file behind. A
 * notification sent again (claimed again after a crash) replaces its own file, so this
 * provider never shows a message twice. The folder is created (mode 0750) when missing.
 *
 * The writes and fsyncs run on a writer thread of the provider, one message at a time
 * in the order sent, so a slow disk never holds up the loop; done is called from the
 * loop (an eventfd wakes it). destroy() waits for the file in hand, if any.
 */
#ifndef FRONTDOOR_PROVIDER_FILE_H
#define FRONTDOOR_PROVIDER_FILE_H

#include <stddef.h>

#include <event2/event.h>

#include "frontdoor/provider.h"

/* from: the email From address (email channel). Returns 0 and *out, or -1 with err set
 * (the folder cannot be created or written). */
int provider_file_new(struct event_base *base, enum template_channel ch, const char *spool_dir,
                      const char *from, struct provider *out, char *err, size_t errlen);

#endif

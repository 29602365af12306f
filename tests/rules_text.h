/* The deadlines and the route table of a rule file, for the tests that write rule files
 * of their own (test_rules, test_route): 13 lines, every priority and every route. */
#ifndef FRONTDOOR_TESTS_RULES_TEXT_H
#define FRONTDOOR_TESTS_RULES_TEXT_H

#define RULES_TEXT_TABLES                                                                          \
    "priority red hours 4\n"                                                                       \
    "priority amber working_days 1 at 17:00\n"                                                     \
    "priority green working_days 3 at 17:00\n"                                                     \
    "priority blue none\n"                                                                         \
    "route school green allocated\n"                                                               \
    "route family_hub green allocated\n"                                                           \
    "route youth_support green allocated\n"                                                        \
    "route targeted_family_help amber allocated\n"                                                 \
    "route family_help_panel amber allocated\n"                                                    \
    "route social_care red allocated\n"                                                            \
    "route manual_triage amber triage\n"                                                           \
    "route consent_required green awaiting_consent\n"                                              \
    "route signpost blue closed\n"

#endif

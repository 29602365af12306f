/* frontdoor-mock-kafka: a librdkafka mock cluster reachable over TCP, for tests and the
 * demo (Debian has no Kafka broker). It speaks the Kafka protocol, so the daemon, kcat
 * and any client talk to it as to a real cluster.
 *
 *   frontdoor-mock-kafka [--brokers N] [--topic NAME[:PARTITIONS]]... [--address-file F]
 *                        [--control]
 *
 * Prints the bootstrap address on the first line of standard output (and into F), then
 * runs until SIGTERM or SIGINT. With --control it reads fault-injection commands from
 * standard input, one a line, answering "ok" or "error: ...":
 *   broker_down ID | broker_up ID | broker_rtt ID MS
 *   push_errors APIKEY COUNT ERRCODE   (ERRCODE: librdkafka's number, e.g. 7 = request timed out)
 *   topic NAME PARTITIONS
 *   leader TOPIC PARTITION BROKER      (move a partition's leader)
 *   coordinator GROUP BROKER           (the group coordinator of a consumer group)
 */
#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sysexits.h>
#include <unistd.h>

#include <librdkafka/rdkafka.h>
#include <librdkafka/rdkafka_mock.h>

static volatile sig_atomic_t stop;

static void on_signal(int sig)
{
    (void)sig;
    stop = 1;
}

static int create_topic(rd_kafka_mock_cluster_t *mc, const char *spec)
{
    char name[256];
    int parts = 4;
    const char *colon = strchr(spec, ':');
    size_t n = colon ? (size_t)(colon - spec) : strlen(spec);
    if (n == 0 || n >= sizeof name)
        return -1;
    memcpy(name, spec, n);
    name[n] = '\0';
    if (colon != NULL) {
        char *end;
        parts = (int)strtol(colon + 1, &end, 10);
        if (*end != '\0' || parts < 1 || parts > 1000)
            return -1;
    }
    return rd_kafka_mock_topic_create(mc, name, parts, 1) == RD_KAFKA_RESP_ERR_NO_ERROR ? 0 : -1;
}

static void control_line(rd_kafka_mock_cluster_t *mc, char *line)
{
    char cmd[64], arg[256];
    long a = 0, b = 0;
    int n = sscanf(line, "%63s %255s %ld %ld", cmd, arg, &a, &b);
    rd_kafka_resp_err_t err = RD_KAFKA_RESP_ERR_NO_ERROR;
    if (n < 1)
        return;
    long id = n >= 2 ? strtol(arg, NULL, 10) : 0;
    if (strcmp(cmd, "broker_down") == 0 && n == 2)
        err = rd_kafka_mock_broker_set_down(mc, (int32_t)id);
    else if (strcmp(cmd, "broker_up") == 0 && n == 2)
        err = rd_kafka_mock_broker_set_up(mc, (int32_t)id);
    else if (strcmp(cmd, "broker_rtt") == 0 && n == 3)
        err = rd_kafka_mock_broker_set_rtt(mc, (int32_t)id, (int)a);
    else if (strcmp(cmd, "push_errors") == 0 && n == 4) {
        rd_kafka_resp_err_t errs[1000];
        if (a < 1 || a > 1000) {
            printf("error: COUNT must be 1-1000\n");
            fflush(stdout);
            return;
        }
        for (long i = 0; i < a; i++)
            errs[i] = (rd_kafka_resp_err_t)b;
        rd_kafka_mock_push_request_errors_array(mc, (int16_t)id, (size_t)a, errs);
    } else if (strcmp(cmd, "leader") == 0 && n == 4) {
        err = rd_kafka_mock_partition_set_leader(mc, arg, (int32_t)a, (int32_t)b);
    } else if (strcmp(cmd, "coordinator") == 0 && n == 3) {
        err = rd_kafka_mock_coordinator_set(mc, "group", arg, (int32_t)a);
    } else if (strcmp(cmd, "topic") == 0 && n == 3) {
        char spec[300];
        snprintf(spec, sizeof spec, "%s:%ld", arg, a);
        if (create_topic(mc, spec) != 0)
            err = RD_KAFKA_RESP_ERR__INVALID_ARG;
    } else {
        printf("error: unknown command\n");
        fflush(stdout);
        return;
    }
    if (err)
        printf("error: %s\n", rd_kafka_err2str(err));
    else
        printf("ok\n");
    fflush(stdout);
}

int main(int argc, char **argv)
{
    static const struct option opts[] = {
        {"brokers", required_argument, NULL, 'b'},
        {"topic", required_argument, NULL, 't'},
        {"address-file", required_argument, NULL, 'a'},
        {"control", no_argument, NULL, 'C'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    int brokers = 3;
    const char *address_file = NULL;
    const char *topics[64];
    int n_topics = 0;
    int control = 0;
    int c;
    while ((c = getopt_long(argc, argv, "b:t:a:Ch", opts, NULL)) != -1) {
        switch (c) {
        case 'b':
            brokers = atoi(optarg);
            break;
        case 't':
            if (n_topics < 64)
                topics[n_topics++] = optarg;
            break;
        case 'a':
            address_file = optarg;
            break;
        case 'C':
            control = 1;
            break;
        case 'h':
            printf("usage: %s [--brokers N] [--topic NAME[:PARTITIONS]]... [--address-file F] "
                   "[--control]\n",
                   argv[0]);
            return EX_OK;
        default:
            return EX_USAGE;
        }
    }
    if (brokers < 1 || brokers > 16) {
        fprintf(stderr, "frontdoor-mock-kafka: --brokers must be 1-16\n");
        return EX_USAGE;
    }

    char errstr[512];
    rd_kafka_conf_t *conf = rd_kafka_conf_new();
    rd_kafka_conf_set(conf, "log_level", "3", errstr, sizeof errstr);
    rd_kafka_t *rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, errstr, sizeof errstr);
    if (rk == NULL) {
        fprintf(stderr, "frontdoor-mock-kafka: %s\n", errstr);
        return EX_SOFTWARE;
    }
    rd_kafka_mock_cluster_t *mc = rd_kafka_mock_cluster_new(rk, brokers);
    if (mc == NULL) {
        fprintf(stderr, "frontdoor-mock-kafka: cannot create the mock cluster\n");
        rd_kafka_destroy(rk);
        return EX_SOFTWARE;
    }
    for (int i = 0; i < n_topics; i++)
        if (create_topic(mc, topics[i]) != 0) {
            fprintf(stderr, "frontdoor-mock-kafka: bad --topic %s\n", topics[i]);
            rd_kafka_mock_cluster_destroy(mc);
            rd_kafka_destroy(rk);
            return EX_USAGE;
        }

    const char *bootstraps = rd_kafka_mock_cluster_bootstraps(mc);
    printf("%s\n", bootstraps);
    fflush(stdout);
    if (address_file != NULL) {
        /* Written under a temporary name and renamed, so a waiting script never reads half. */
        char tmp[4096];
        snprintf(tmp, sizeof tmp, "%s.tmp", address_file);
        FILE *f = fopen(tmp, "w");
        if (f == NULL || fprintf(f, "%s\n", bootstraps) < 0 || fclose(f) != 0 ||
            rename(tmp, address_file) != 0) {
            fprintf(stderr, "frontdoor-mock-kafka: cannot write %s: %s\n", address_file,
                    strerror(errno));
            rd_kafka_mock_cluster_destroy(mc);
            rd_kafka_destroy(rk);
            return EX_CANTCREAT;
        }
    }

    struct sigaction sa = {0};
    sa.sa_handler = on_signal;
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGINT, &sa, NULL);
    if (control) {
        char line[512];
        while (!stop && fgets(line, sizeof line, stdin) != NULL)
            control_line(mc, line);
    }
    while (!stop)
        pause();

    rd_kafka_mock_cluster_destroy(mc);
    rd_kafka_destroy(rk);
    return EX_OK;
}

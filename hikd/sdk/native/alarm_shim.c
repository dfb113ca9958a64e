/* hikd's message callback for the vendor library, in C: the library's threads copy each
 * alarm message into a queue without entering Python (no GIL), and the device host's
 * decoder takes everything queued with one call (hikd/sdk/alarm_shim.py reads the records).
 *
 * Built by the Makefile (`make shim`) into libhikd_alarms.so beside this file, loaded with
 * cffi's ABI mode like the vendor library; without it hikd runs the Python callback
 * (hikd/sdk/alarms.py `MessageCallback`), which copies exactly the same bytes.
 *
 * The vendor library keeps the last callback for the life of the process and may call it
 * from many threads at once, before NET_DVR_StartListen_V30 returns and after hikd asked it
 * to stop: this code is never unloaded, its queues live in static memory and are never
 * freed, a queue's slot is never reused, and a message for a closed queue is counted and
 * dropped under the queue's lock.
 */
#define _GNU_SOURCE
#include <poll.h>
#include <pthread.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <time.h>
#include <unistd.h>

#define EXPORT __attribute__((visibility("default")))

#define SHIM_ABI 2 /* the record format and the functions below; hikd checks it at load */

/* Layouts from HCNetSDK.h (x86-64): tests/sdk/test_alarm_shim.py checks every one against
 * the header's facts (tests/fixtures/abi_layouts.json) and hikd's cffi declarations. */
#define COMM_ALARM_V40 0x4007
#define COMM_ISAPI_ALARM 0x6009
#define ALARMER_SIZE 372          /* sizeof(NET_DVR_ALARMER) */
#define ISAPI_DATA 0              /* NET_DVR_ALARM_ISAPI_INFO.pAlarmData */
#define ISAPI_DATA_LEN 8          /* .dwAlarmDataLen */
#define ISAPI_DATA_TYPE 12        /* .byDataType */
#define ISAPI_PICTURES 13         /* .byPicturesNumber */
#define ISAPI_PIC_PACK 16         /* .pPicPackData */
#define PIC_SIZE 272              /* sizeof(NET_DVR_ALARM_ISAPI_PICDATA) */
#define PIC_LEN 0                 /* .dwPicLen */
#define PIC_TYPE 4                /* .byPicType */
#define PIC_NAME 8                /* .szFilename */
#define PIC_NAME_MAX 256          /* sizeof .szFilename */
#define PIC_DATA 264              /* .pPicData */
#define V40_SIZE 168              /* sizeof(NET_DVR_ALARMINFO_V40) */
#define V40_LIST 160              /* .pAlarmData */
#define V40_TYPE 0                /* .struAlarmFixedHeader.dwAlarmType */
#define V40_IO_OUTPUTS 16         /* ...uStruAlarm.struIOAlarm.dwTrigerAlarmOutNum */
#define V40_IO_RECORDINGS 20      /* ...uStruAlarm.struIOAlarm.dwTrigerRecordChanNum */
#define V40_CHANNELS 12           /* ...uStruAlarm.struAlarmChannel.dwAlarmChanNum */
#define V40_DISKS 12              /* ...uStruAlarm.struAlarmHardDisk.dwAlarmHardDiskNum */
#define V40_LIST_MAX 4096         /* hikd/sdk/alarms.py _V40_LIST_MAX */

#define MAX_QUEUES 4096           /* one per alarm pipeline the process ever starts */
#define USER_QUEUE_SHIFT 20       /* user pointer: (queue + 1) << 20 | listen << 16 | port */
#define USER_ROUTE_MASK 0xfffffu

/* A record as the decoder reads it (all little-endian x86-64), then the sender's struct,
 * the payload and each picture (struct picture_head, its name, its bytes); 8-aligned. */
struct record_head {
    uint32_t size;
    int32_t command;
    int64_t received_ns;
    uint32_t route; /* listen << 16 | port */
    uint32_t alarmer_len;
    uint32_t payload_len;
    uint32_t data_type;
    uint32_t pictures;
    uint32_t unused;
};

struct picture_head {
    uint32_t name_len;
    uint32_t type;
    uint32_t data_len;
};

struct record {
    struct record *next;
    struct record_head head; /* followed by the record's bytes */
};

struct queue {
    pthread_mutex_t lock;
    struct record *first, *last;
    uint32_t queued; /* records waiting: the decoder reads it without a call or the lock */
    int fd;   /* eventfd: readable while records wait; -1 once closed */
    int open;
    int signalled; /* the eventfd holds a count the decoder has not read yet */
    uint64_t errors; /* copies that failed (out of memory) */
    uint64_t late;   /* messages that came after the queue was closed */
};

static struct queue queues[MAX_QUEUES];
static pthread_mutex_t opening = PTHREAD_MUTEX_INITIALIZER;
static int opened; /* queues[0 .. opened) are initialised; read with acquire */
static int arming_queue = -1; /* where a message with a NULL user pointer goes */

static uint32_t u32_at(const char *p, size_t offset) {
    uint32_t v;
    memcpy(&v, p + offset, sizeof v);
    return v;
}

static const char *ptr_at(const char *p, size_t offset) {
    const char *v;
    memcpy(&v, p + offset, sizeof v);
    return v;
}

static size_t aligned(size_t n) { return (n + 7u) & ~(size_t)7u; }

/* How many DWORDs pAlarmData holds, by dwAlarmType (seed 5.16; hikd/sdk/alarm_types.py). */
static uint64_t v40_list_count(const char *info) {
    uint32_t type = u32_at(info, V40_TYPE);
    uint64_t count;
    switch (type) {
    case 0: case 23: /* IO_TYPES */
        count = (uint64_t)u32_at(info, V40_IO_OUTPUTS) + u32_at(info, V40_IO_RECORDINGS);
        break;
    case 1: case 4: case 5: case 18: case 24: /* DISK_TYPES */
        count = u32_at(info, V40_DISKS);
        break;
    case 2: case 3: case 6: case 9: case 10: case 11: case 13: case 15: case 16: case 19:
    case 20: case 21: /* CHANNEL_TYPES */
        count = u32_at(info, V40_CHANNELS);
        break;
    default:
        return 0;
    }
    return count > V40_LIST_MAX ? V40_LIST_MAX : count;
}

/* One record with what `MessageCallback._on_message` copies; NULL when out of memory. */
static struct record *copy_message(int command, const char *alarmer, const char *info,
                                   unsigned int length, int64_t received, uint32_t route) {
    struct record_head h = {0};
    const char *body = NULL, *pics = NULL, *list = NULL;
    size_t body_len = 0, list_len = 0, size = sizeof h;
    h.command = command;
    h.received_ns = received;
    h.route = route;
    h.alarmer_len = alarmer ? ALARMER_SIZE : 0;
    if (command == COMM_ISAPI_ALARM && info) {
        body = ptr_at(info, ISAPI_DATA);
        body_len = body ? u32_at(info, ISAPI_DATA_LEN) : 0;
        h.data_type = (unsigned char)info[ISAPI_DATA_TYPE];
        pics = ptr_at(info, ISAPI_PIC_PACK);
        h.pictures = pics ? (unsigned char)info[ISAPI_PICTURES] : 0;
        for (uint32_t i = 0; i < h.pictures; i++) {
            const char *pic = pics + (size_t)i * PIC_SIZE;
            size += sizeof(struct picture_head) + strnlen(pic + PIC_NAME, PIC_NAME_MAX);
            size += ptr_at(pic, PIC_DATA) ? u32_at(pic, PIC_LEN) : 0;
        }
    } else if (info && length) {
        body = info;
        body_len = length;
        if (command == COMM_ALARM_V40 && length == V40_SIZE && ptr_at(info, V40_LIST)) {
            list = ptr_at(info, V40_LIST);
            list_len = 4 * v40_list_count(info);
        }
    }
    h.payload_len = (uint32_t)(body_len + list_len);
    size = aligned(size + h.alarmer_len + body_len + list_len);
    if (size > UINT32_MAX) return NULL; /* more than the record's size field holds */
    h.size = (uint32_t)size;
    struct record *r = malloc(offsetof(struct record, head) + size);
    if (r == NULL) return NULL;
    r->next = NULL;
    r->head = h;
    char *out = (char *)&r->head + sizeof h;
    if (h.alarmer_len) { memcpy(out, alarmer, ALARMER_SIZE); out += ALARMER_SIZE; }
    if (body_len) { memcpy(out, body, body_len); out += body_len; }
    if (list_len) { memcpy(out, list, list_len); out += list_len; }
    for (uint32_t i = 0; i < h.pictures; i++) {
        const char *pic = pics + (size_t)i * PIC_SIZE;
        const char *data = ptr_at(pic, PIC_DATA);
        struct picture_head p = {
            .name_len = (uint32_t)strnlen(pic + PIC_NAME, PIC_NAME_MAX),
            .type = (unsigned char)pic[PIC_TYPE],
            .data_len = data ? u32_at(pic, PIC_LEN) : 0,
        };
        memcpy(out, &p, sizeof p);
        out += sizeof p;
        memcpy(out, pic + PIC_NAME, p.name_len);
        out += p.name_len;
        if (p.data_len) { memcpy(out, data, p.data_len); out += p.data_len; }
    }
    memset(out, 0, (char *)&r->head + size - out); /* the alignment's padding */
    return r;
}

static struct queue *queue_at(int index) {
    int count = __atomic_load_n(&opened, __ATOMIC_ACQUIRE);
    return index >= 0 && index < count ? &queues[index] : NULL;
}

/* Under the queue's lock: one write per wake-up, however many records and wakes. */
static void signal_queue(struct queue *q) {
    uint64_t one = 1;
    if (q->fd < 0 || q->signalled) return;
    q->signalled = 1;
    if (write(q->fd, &one, sizeof one) < 0) {
        /* EAGAIN: the counter is at its maximum, the decoder is woken anyway. */
    }
}

/* The callback itself (MSGCallBack): for NET_DVR_SetDVRMessageCallBack_V30 and each
 * NET_DVR_StartListen_V30, `user` from hikd_alarms_user(). */
EXPORT void hikd_alarm_message(int command, void *alarmer, char *info, unsigned int length,
                               void *user) {
    struct timespec now;
    clock_gettime(CLOCK_REALTIME, &now);
    int64_t received = (int64_t)now.tv_sec * 1000000000 + now.tv_nsec;
    uintptr_t code = (uintptr_t)user;
    int index = code ? (int)(code >> USER_QUEUE_SHIFT) - 1
                     : __atomic_load_n(&arming_queue, __ATOMIC_ACQUIRE);
    struct queue *q = queue_at(index);
    if (q == NULL) return; /* not a pointer hikd gave: nobody to tell */
    struct record *r = copy_message(command, alarmer, info, length, received,
                                    (uint32_t)(code & USER_ROUTE_MASK));
    pthread_mutex_lock(&q->lock);
    if (r == NULL) {
        q->errors++;
    } else if (!q->open) {
        q->late++;
        free(r);
    } else if (q->last) {
        q->last->next = r; /* the decoder has been woken for the first record already */
        q->last = r;
        __atomic_add_fetch(&q->queued, 1, __ATOMIC_RELEASE);
    } else {
        q->first = q->last = r;
        __atomic_add_fetch(&q->queued, 1, __ATOMIC_RELEASE);
        signal_queue(q); /* under the lock: hikd_alarms_close may close the fd */
    }
    pthread_mutex_unlock(&q->lock);
}

EXPORT int hikd_alarms_abi(void) { return SHIM_ABI; }

/* A new queue; its index, or -1 (no slot left, or no eventfd). */
EXPORT int hikd_alarms_open(void) {
    int index = -1;
    pthread_mutex_lock(&opening);
    if (opened < MAX_QUEUES) {
        int fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
        if (fd >= 0) {
            struct queue *q = &queues[opened];
            pthread_mutex_init(&q->lock, NULL);
            q->fd = fd;
            q->open = 1;
            index = opened;
            __atomic_store_n(&opened, opened + 1, __ATOMIC_RELEASE);
        }
    }
    pthread_mutex_unlock(&opening);
    return index;
}

/* The user pointer that sends a message to `queue`, as an armed device's (listen = 0) or
 * one pushed to the listen port `port`. */
EXPORT void *hikd_alarms_user(int queue, int listen, int port) {
    return (void *)(((uintptr_t)(queue + 1) << USER_QUEUE_SHIFT) |
                    ((uintptr_t)(listen ? 1 : 0) << 16) | ((uintptr_t)port & 0xffffu));
}

/* Where a message goes whose user pointer the library left NULL. */
EXPORT void hikd_alarms_set_arming(int queue) {
    __atomic_store_n(&arming_queue, queue, __ATOMIC_RELEASE);
}

/* How many records wait in `queue`, for the decoder to look at without a call (a plain
 * 32-bit load; a record counted late is found by the next look or wake-up). */
EXPORT const uint32_t *hikd_alarms_queued(int queue) {
    struct queue *q = queue_at(queue);
    return q ? &q->queued : NULL;
}

/* Wakes the decoder waiting on `queue`'s eventfd (hikd queued work of its own). */
EXPORT void hikd_alarms_wake(int queue) {
    struct queue *q = queue_at(queue);
    if (q == NULL) return;
    pthread_mutex_lock(&q->lock);
    signal_queue(q);
    pthread_mutex_unlock(&q->lock);
}

/* Copies the queued records, oldest first, into `buffer` while they fit; returns the bytes
 * written. When none is queued, waits for one (or hikd_alarms_wake) up to `timeout_ms`
 * first: the caller (cffi) has released the interpreter's lock. counts[0] = the size of
 * the first record still queued (0: none; more than `capacity`: a larger buffer is
 * needed), counts[1] = failed copies, counts[2] = late messages, both since the queue
 * opened. The eventfd is read (reset) with the records detached, under the lock: a record
 * queued after that signals it again. */
EXPORT size_t hikd_alarms_take(int queue, char *buffer, size_t capacity, uint64_t *counts,
                               int timeout_ms) {
    struct queue *q = queue_at(queue);
    counts[0] = counts[1] = counts[2] = 0;
    if (q == NULL) return 0;
    uint64_t ignored;
    pthread_mutex_lock(&q->lock);
    if (q->first == NULL && !q->signalled && q->fd >= 0 && timeout_ms > 0) {
        struct pollfd ready = {.fd = q->fd, .events = POLLIN};
        pthread_mutex_unlock(&q->lock); /* only the decoder closes the fd: it is this thread */
        poll(&ready, 1, timeout_ms);
        pthread_mutex_lock(&q->lock);
    }
    if (q->signalled) { /* no system call for a take that finds the queue as it was */
        q->signalled = 0;
        if (q->fd >= 0 && read(q->fd, &ignored, sizeof ignored) < 0) {
            /* EAGAIN: another reader took it; nothing is lost, the records are below */
        }
    }
    struct record *r = q->first;
    q->first = q->last = NULL;
    __atomic_store_n(&q->queued, 0, __ATOMIC_RELAXED);
    counts[1] = q->errors;
    counts[2] = q->late;
    pthread_mutex_unlock(&q->lock);

    size_t used = 0;
    while (r && r->head.size <= capacity - used) {
        struct record *next = r->next;
        memcpy(buffer + used, &r->head, r->head.size);
        used += r->head.size;
        free(r);
        r = next;
    }
    if (r) { /* what did not fit goes back in front of what came meanwhile */
        counts[0] = r->head.size;
        struct record *tail = r;
        uint32_t left = 1;
        for (; tail->next; tail = tail->next) left++;
        pthread_mutex_lock(&q->lock);
        tail->next = q->first;
        if (q->first == NULL) q->last = tail;
        q->first = r;
        __atomic_add_fetch(&q->queued, left, __ATOMIC_RELEASE);
        pthread_mutex_unlock(&q->lock);
    }
    return used;
}

/* The queue's pipeline has stopped: its records are freed, later messages only counted. */
EXPORT void hikd_alarms_close(int queue) {
    struct queue *q = queue_at(queue);
    if (q == NULL) return;
    pthread_mutex_lock(&q->lock);
    struct record *r = q->first;
    q->first = q->last = NULL;
    q->open = 0;
    if (q->fd >= 0) close(q->fd);
    q->fd = -1;
    pthread_mutex_unlock(&q->lock);
    while (r) {
        struct record *next = r->next;
        free(r);
        r = next;
    }
}

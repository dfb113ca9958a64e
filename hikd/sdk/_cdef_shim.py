"""The declarations of hikd's own alarm callback library (hikd/sdk/native/alarm_shim.c).

Pre-parsed with the vendor's declarations into hikd/sdk/_ffi_abi.py (tools/gen_sdk_ffi.py
appends them), so `hikd_alarm_message` has the vendor's own callback type (MSGCallBack) and
loading the shim needs no parser.
"""

SHIM_CDEF = """
void hikd_alarm_message(int, NET_DVR_ALARMER *, char *, unsigned int, void *);
int hikd_alarms_abi(void);
int hikd_alarms_open(void);
void *hikd_alarms_user(int, int, int);
void hikd_alarms_set_arming(int);
const uint32_t *hikd_alarms_queued(int);
void hikd_alarms_wake(int);
size_t hikd_alarms_take(int, char *, size_t, uint64_t *, int);
void hikd_alarms_close(int);
"""

"""The doctor's readers and its in-place edits, on the spellings real devices use.

The documents here are written for these tests after the facts seen in devices' captures
(hikvision_next's fixtures: a DS-7608NXI-I2 NVR and cameras) and the ISAPI guide: an
``EventNotification`` wrapper, ``dyn...`` ids on NVR IP channels and inputs, a single
linkage entry or none (``<EventTriggerNotificationList/>``), the hikvision.com namespace,
``hostName`` alarm hosts, local times without an offset, and ``<Extensions>`` of the
device's own.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest

from hikd.doctor import documents
from hikd.doctor.xml_edit import EditError, add_center, set_alarm_host

NVR_TRIGGERS = b"""<?xml version="1.0" encoding="UTF-8"?>
<EventNotification version="2.0" xmlns="http://www.hikvision.com/ver20/XMLSchema">
<EventTriggerList version="2.0">
<EventTrigger><id>IO-1</id><eventType>IO</eventType><inputIOPortID>1</inputIOPortID>
<EventTriggerNotificationList/></EventTrigger>
<EventTrigger><id>IO-301</id><eventType>IO</eventType><dynInputIOPortID>301</dynInputIOPortID>
<EventTriggerNotificationList><EventTriggerNotification><id>center</id>
<notificationMethod>center</notificationMethod></EventTriggerNotification>
</EventTriggerNotificationList></EventTrigger>
<EventTrigger><eventType>VMD</eventType><id>VMD-3</id>
<EventTriggerNotificationList><EventTriggerNotification><id>record-3</id>
<notificationMethod>record</notificationMethod><dynVideoInputID>3</dynVideoInputID>
</EventTriggerNotification></EventTriggerNotificationList>
<dynVideoInputChannelID>3</dynVideoInputChannelID>
<Extensions><notificationMethod>center</notificationMethod></Extensions></EventTrigger>
</EventTriggerList></EventNotification>
"""


def test_triggers_in_an_nvr_spelling() -> None:
    found = {t.id: t for t in documents.triggers(NVR_TRIGGERS)}
    assert found["IO-1"].input_port == 1 and not found["IO-1"].notifies_center
    assert found["IO-301"].input_port == 301 and found["IO-301"].notifies_center
    vmd = found["VMD-3"]
    assert (vmd.event_type, vmd.channel, vmd.dynamic) == ("VMD", 3, True)
    # The <Extensions> copy of a name is not the linkage.
    assert vmd.methods == ("record",)


def test_triggers_lower_case_without_namespace() -> None:
    body = (
        b"<eventtriggerlist><eventtrigger><id>linedetection-1</id>"
        b"<eventtype>linedetection</eventtype><videoinputchannelid>1</videoinputchannelid>"
        b"<eventtriggernotificationlist><eventtriggernotification>"
        b"<notificationmethod>CENTER</notificationmethod></eventtriggernotification>"
        b"</eventtriggernotificationlist></eventtrigger></eventtriggerlist>"
    )
    (trigger,) = documents.triggers(body)
    assert (trigger.channel, trigger.dynamic, trigger.notifies_center) == (1, False, True)


def test_alarm_hosts_by_address_or_name() -> None:
    body = b"""<HttpHostNotificationList xmlns="http://www.isapi.org/ver20/XMLSchema">
<HttpHostNotification><id>1</id><url>/api/hikvision</url><protocolType>HTTPS</protocolType>
<addressingFormatType>hostname</addressingFormatType><hostName>ha.lan</hostName>
<portNo>443</portNo><Extensions xmlns="urn:selfextension:psiaext-ver10-xsd">
<intervalBetweenEvents>0</intervalBetweenEvents></Extensions></HttpHostNotification>
<HttpHostNotification><ipAddress>0.0.0.0</ipAddress><id>2</id><portNo>80</portNo>
</HttpHostNotification></HttpHostNotificationList>"""
    first, second = documents.alarm_hosts(body)
    assert (first.address, first.port, first.protocol, first.unused) == (
        "ha.lan",
        443,
        "HTTPS",
        False,
    )
    assert (second.id, second.unused) == ("2", True)


def test_device_time_with_and_without_an_offset() -> None:
    with_offset = (
        b"<Time><timeMode>manual</timeMode><localTime>2024-05-01T10:00:00+08:00</localTime></Time>"
    )
    found = documents.device_time(with_offset, None)
    assert found.now == datetime(2024, 5, 1, 2, 0, tzinfo=UTC)
    assert not found.ntp
    naive = (
        b"<Time><localTime>2024-05-01T10:00:00</localTime><timeZone>CST-8:00:00</timeZone>"
        b"<timeMode>NTP</timeMode></Time>"
    )
    found = documents.device_time(naive, None)
    assert found.now == datetime(2024, 5, 1, 10, 0, tzinfo=timezone(timedelta(hours=8)))
    assert found.ntp
    # The configured time zone wins over the device's POSIX string (which has no DST rules).
    found = documents.device_time(naive, timezone(timedelta(hours=9)))
    assert found.now is not None and found.now.utcoffset() == timedelta(hours=9)
    assert documents.posix_offset("CET-1CEST,M3.5.0/02:00:00,M10.5.0/03:00:00") == timezone(
        timedelta(hours=1)
    )


def test_schedules_cover_now_or_not() -> None:
    body = b"""<ScheduleList><Schedule><id>VMD_video1</id><eventType>VMD</eventType>
<videoInputChannelID>1</videoInputChannelID><TimeBlockList size="8">
<TimeBlock><dayOfWeek>3</dayOfWeek><TimeRange><beginTime>08:00</beginTime>
<endTime>17:00</endTime></TimeRange></TimeBlock>
<TimeBlock><TimeRange><beginTime>00:00:00</beginTime><endTime>24:00:00</endTime></TimeRange>
</TimeBlock></TimeBlockList></Schedule>
<Schedule><id>VMD_video2</id><TimeBlockList size="8"/></Schedule></ScheduleList>"""
    found = documents.schedules(body)
    wednesday_noon = datetime(2024, 5, 1, 12, 0)
    assert documents.covers(found[1], wednesday_noon)
    assert not documents.covers(found[1], wednesday_noon.replace(hour=18))
    assert not documents.covers(
        found[1], datetime(2024, 5, 2, 12, 0)
    )  # the holiday row is not a weekday
    assert found[2] == []


def test_user_rights_of_an_operator_and_an_admin() -> None:
    users = b"""<UserList>
<User><id>1</id><userName>admin</userName><userLevel>Administrator</userLevel></User>
<User><id>2</id><userName>hikd</userName><userLevel>Operator</userLevel></User></UserList>"""
    perms = b"""<UserPermissionList><UserPermission><id>1</id><userID>2</userID>
<userType>operator</userType>
<remotePermission><alarmOutOrUpload>false</alarmOutOrUpload></remotePermission>
<localPermission><alarmOutOrUpload>true</alarmOutOrUpload></localPermission>
</UserPermission></UserPermissionList>"""
    assert documents.user_rights(users, perms, "admin") == documents.UserRights(
        "Administrator", True
    )
    assert documents.user_rights(users, perms, "hikd") == documents.UserRights("Operator", False)
    assert documents.user_rights(users, None, "hikd") == documents.UserRights("Operator", None)
    assert documents.user_rights(users, perms, "nobody") is None


PREFIXED = (
    b'<?xml version="1.0"?><isapi:EventTrigger xmlns:isapi="http://www.isapi.org/ver20/XMLSchema">'
    b'<isapi:id>VMD-1</isapi:id><isapi:EventTriggerNotificationList version="2.0"/>'
    b"</isapi:EventTrigger>"
)


def test_add_center_keeps_the_device_spelling() -> None:
    edited = add_center(PREFIXED)
    assert edited is not None
    new, added = edited
    assert b'<isapi:EventTriggerNotificationList version="2.0">' in new
    assert "<isapi:notificationMethod>center</isapi:notificationMethod>" in added
    assert documents.triggers(new)[0].notifies_center
    assert add_center(new) is None  # a second run changes nothing
    one = NVR_TRIGGERS[NVR_TRIGGERS.index(b"<EventTrigger><eventType>VMD") :]
    one = one[: one.index(b"</EventTrigger>") + len(b"</EventTrigger>")]
    edited = add_center(one)
    assert edited is not None
    assert b"<dynVideoInputID>3</dynVideoInputID>" in edited[0]
    assert documents.triggers(edited[0])[0].methods == ("record", "center")


def test_add_center_refuses_what_it_cannot_edit_safely() -> None:
    with pytest.raises(EditError):
        add_center(b"<EventTrigger><!-- x --><id>1</id></EventTrigger>")
    with pytest.raises(EditError):
        add_center(b"<ResponseStatus><statusCode>4</statusCode></ResponseStatus>")


def test_set_alarm_host_edits_one_slot_in_place() -> None:
    body = (
        b"<HttpHostNotificationList><HttpHostNotification><id>1</id><url>/x</url>"
        b"<ipAddress>10.0.0.9</ipAddress><portNo>8123</portNo></HttpHostNotification>"
        b"<HttpHostNotification><id>2</id><ipAddress>0.0.0.0</ipAddress><portNo>80</portNo>"
        b"<Extensions><ipAddress>999</ipAddress></Extensions></HttpHostNotification>"
        b"</HttpHostNotificationList>"
    )
    new, what = set_alarm_host(body, "2", "192.168.1.10", 7200, "/")
    assert new.startswith(body[: body.index(b"<HttpHostNotification><id>2")])  # slot 1 untouched
    assert b"<Extensions><ipAddress>999</ipAddress></Extensions>" in new
    hosts = documents.alarm_hosts(new)
    assert [(h.address, h.port) for h in hosts] == [("10.0.0.9", 8123), ("192.168.1.10", 7200)]
    assert "ipAddress=192.168.1.10" in what
    with pytest.raises(EditError):
        set_alarm_host(body, "3", "192.168.1.10", 7200, "/")


def test_record_schedules_in_two_spellings() -> None:
    body = b"""<TrackList xmlns="http://www.hikvision.com/ver20/XMLSchema">
<Track><id>101</id><Channel>1</Channel><Enable>true</Enable><TrackSchedule><ScheduleBlockList>
<ScheduleBlock><ScheduleAction><id>1</id>
<ScheduleActionStartTime><DayOfWeek>Monday</DayOfWeek><TimeOfDay>07:30:00</TimeOfDay>
</ScheduleActionStartTime><ScheduleActionEndTime><DayOfWeek>Monday</DayOfWeek>
<TimeOfDay>22:00:00</TimeOfDay></ScheduleActionEndTime>
<Actions><Record>true</Record><ActionRecordingMode>CMR</ActionRecordingMode></Actions>
</ScheduleAction></ScheduleBlock></ScheduleBlockList></TrackSchedule></Track>
<Track><id>201</id><Enable>true</Enable><TrackSchedule><ScheduleBlock><ScheduleAction>
<ScheduleActionStartTime><DayOfWeek>Monday</DayOfWeek><TimeOfDay>00:00:00</TimeOfDay>
</ScheduleActionStartTime><ScheduleActionEndTime><DayOfWeek>Tuesday</DayOfWeek>
<TimeOfDay>00:00:00</TimeOfDay></ScheduleActionEndTime>
<Actions><ActionRecordingMode>MOTION</ActionRecordingMode></Actions></ScheduleAction>
</ScheduleBlock></TrackSchedule></Track>
<Track><id>301</id><Enable>true</Enable><TrackSchedule><ScheduleBlock><ScheduleAction>
<ScheduleActionStartTime><DayOfWeek>Monday</DayOfWeek><TimeOfDay>00:00:00</TimeOfDay>
</ScheduleActionStartTime><ScheduleActionEndTime><DayOfWeek>Monday</DayOfWeek>
<TimeOfDay>24:00:00</TimeOfDay></ScheduleActionEndTime><Actions><Record>false</Record>
</Actions></ScheduleAction></ScheduleBlock></TrackSchedule></Track>
<Track><id>401</id><Enable>false</Enable></Track></TrackList>"""
    assert documents.record_schedules(body) == {1: True, 2: True, 3: False, 4: False}

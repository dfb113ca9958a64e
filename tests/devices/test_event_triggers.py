"""What a device tells of itself (hikd.devices.capabilities.event_triggers): the event triggers
it lists, in the spellings real devices use (an NVR's IP channels as
``dynVideoInputChannelID`` with ids from 33, alarm inputs, device-wide triggers, a
trigger without "notify surveillance center", namespaces or none), and the types hikd
announces from them."""

from __future__ import annotations

from hikd.devices.capabilities.channels import ChannelMap, channel_map
from hikd.devices.capabilities.event_triggers import event_triggers, supported_types
from hikd.sdk.login import DeviceFacts
from tests.devices.test_channels import PROXY_FROM_33

NVR_TRIGGERS = b"""<?xml version="1.0" encoding="UTF-8"?>
<EventTriggerList version="2.0" xmlns="http://www.hikvision.com/ver20/XMLSchema">
<EventTrigger><id>VMD-33</id><eventType>VMD</eventType>
<eventDescription>VMD Event trigger Information</eventDescription>
<dynVideoInputChannelID>33</dynVideoInputChannelID>
<EventTriggerNotificationList>
<EventTriggerNotification><id>record-33</id><notificationMethod>record</notificationMethod>
<dynVideoInputID>33</dynVideoInputID></EventTriggerNotification>
<EventTriggerNotification><id>center</id><notificationMethod>center</notificationMethod>
<notificationRecurrence>beginning</notificationRecurrence></EventTriggerNotification>
</EventTriggerNotificationList></EventTrigger>
<EventTrigger><eventType>linedetection</eventType><id>linedetection-34</id>
<dynVideoInputChannelID>34</dynVideoInputChannelID>
<EventTriggerNotificationList>
<EventTriggerNotification><notificationMethod>CENTER</notificationMethod></EventTriggerNotification>
</EventTriggerNotificationList></EventTrigger>
<EventTrigger><id>fielddetection-34</id><eventType>fielddetection</eventType>
<dynVideoInputChannelID>34</dynVideoInputChannelID>
<EventTriggerNotificationList/></EventTrigger>
<EventTrigger><id>IO-2</id><eventType>IO</eventType><inputIOPortID>2</inputIOPortID>
<videoInputChannelID>1</videoInputChannelID>
<EventTriggerNotificationList><EventTriggerNotification>
<notificationMethod>center</notificationMethod></EventTriggerNotification>
</EventTriggerNotificationList></EventTrigger>
<EventTrigger><id>diskfull</id><eventType>diskfull</eventType>
<EventTriggerNotificationList><EventTriggerNotification>
<notificationMethod>center</notificationMethod></EventTriggerNotification>
</EventTriggerNotificationList></EventTrigger>
<EventTrigger><id>x-1</id><eventType>somethingNew</eventType>
<EventTriggerNotificationList><EventTriggerNotification>
<notificationMethod>center</notificationMethod></EventTriggerNotification>
</EventTriggerNotificationList></EventTrigger>
</EventTriggerList>"""

CAMERA_TRIGGERS = b"""<EventTriggerList><EventTrigger><ID>VMD-1</ID><EventType>vmd</EventType>
<VideoInputChannelID>1</VideoInputChannelID><EventTriggerNotificationList>
<EventTriggerNotification><NotificationMethod>center</NotificationMethod>
</EventTriggerNotification></EventTriggerNotificationList></EventTrigger></EventTriggerList>"""


def nvr_channels() -> ChannelMap:
    facts = DeviceFacts(
        serial="S", device_type="NVR", device_type_code=2216, analog_channels=0,
        start_channel=1, ip_channels=2, start_ip_channel=1, zero_channels=0,
        audio_channels=0, alarm_inputs=2, alarm_outputs=0, disks=1, protocol="isapi",
    )  # fmt: skip
    return channel_map(facts, None, PROXY_FROM_33)


def test_an_nvrs_triggers_in_hikds_channel_numbers() -> None:
    channels = nvr_channels()
    triggers = event_triggers(NVR_TRIGGERS, channels)
    assert triggers == [
        # InputProxy id 33 is "Garage", hikd's channel 1; 34 is "Driveway", channel 2.
        {"event_type": "VMD", "channel": 1, "input": None, "center": True},
        {"event_type": "linedetection", "channel": 2, "input": None, "center": True},
        {"event_type": "fielddetection", "channel": 2, "input": None, "center": False},
        {"event_type": "IO", "channel": None, "input": 2, "center": True},
        {"event_type": "diskfull", "channel": None, "input": None, "center": True},
        {"event_type": "somethingNew", "channel": None, "input": None, "center": True},
    ]
    # Only what notifies hikd, in hikd's names; unknown names are left out.
    assert supported_types(triggers) == {
        "motion": [1],
        "line_crossing": [2],
        "io": ["input2"],
        "disk_full": [None],
    }


def test_a_camera_without_namespace_in_other_case() -> None:
    triggers = event_triggers(CAMERA_TRIGGERS, channel_map(_camera(), None, None))
    assert triggers == [{"event_type": "vmd", "channel": 1, "input": None, "center": True}]
    assert supported_types(triggers) == {"motion": [1]}


def test_nothing_readable_is_no_trigger() -> None:
    channels = channel_map(_camera(), None, None)
    assert event_triggers(b"<html>404</html>", channels) == []
    assert event_triggers(b"not xml", channels) == []
    assert event_triggers(b'<!DOCTYPE x [<!ENTITY a "b">]><x/>', channels) == []


def _camera() -> DeviceFacts:
    return DeviceFacts(
        serial="C", device_type="IPCamera", device_type_code=0, analog_channels=1,
        start_channel=1, ip_channels=0, start_ip_channel=0, zero_channels=0,
        audio_channels=0, alarm_inputs=1, alarm_outputs=1, disks=0, protocol="isapi",
    )  # fmt: skip

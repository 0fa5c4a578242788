"""smartcell's Fast DDS profile: the file the cell's processes get, and when they do not get it."""
from __future__ import annotations

import xml.etree.ElementTree as ET

from smartcell.tools.cell_processes import DDS_PROFILE_VARIABLES, dds_profile_file, isolated_ros_env, with_dds_profile

NS = {'p': 'http://www.eprosima.com/XMLSchemas/fastRTPS_Profiles'}


def test_the_profile_is_the_default_participant_profile_with_a_4_s_lease():
    path = dds_profile_file()
    assert path is not None and path.is_file()
    root = ET.parse(path).getroot()
    participants = root.findall('p:participant', NS)
    assert len(participants) == 1 and participants[0].get('is_default_profile') == 'true'
    discovery = participants[0].find('p:rtps/p:builtin/p:discovery_config', NS)
    lease = float(discovery.find('p:leaseDuration/p:sec', NS).text)
    announcement = float(discovery.find('p:leaseAnnouncement/p:sec', NS).text)
    assert lease == 4.0 and announcement == 1.0      # a live participant would miss 4 announcements in a row


def test_the_cells_processes_get_it_unless_a_profile_is_named_already():
    env = with_dds_profile({'PATH': '/usr/bin'})
    assert {env[name] for name in DDS_PROFILE_VARIABLES} == {str(dds_profile_file())}
    for name in DDS_PROFILE_VARIABLES:         # an integrator's own profile wins, whichever variable names it
        own = with_dds_profile({name: '/etc/cell/dds.xml'})
        assert own == {name: '/etc/cell/dds.xml'}
    isolated = isolated_ros_env({'PATH': '/usr/bin'}, domain_id=7)
    assert isolated['FASTRTPS_DEFAULT_PROFILES_FILE'] == str(dds_profile_file())
    assert isolated['ROS_DOMAIN_ID'] == '7'

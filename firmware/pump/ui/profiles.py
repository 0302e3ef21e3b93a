"""Basal profiles: the list, activating, deleting and editing one segment by segment."""

from pump.core import limits as lim
from pump.core import schedule
from pump.ui import text
from pump.ui.screens import Confirm, Menu
from pump.ui.segments import SegmentList


def _settings(ui):
    return ui.app.therapy.settings


def profiles_menu(ui):
    s = _settings(ui)
    items = []
    for index in range(len(s.profiles)):
        mark = "*" if index == s.active_profile else " "
        items.append((mark + s.profiles[index].name, _profile_actions(index)))
    if len(s.profiles) < lim.MAX_PROFILES:
        items.append(("+ New profile", _profile_actions(len(s.profiles))))
    ui.push(Menu("profiles", "Basal profiles", items))


def _profile_actions(index):
    def open_profile(ui):
        s = _settings(ui)
        items = [("Edit", lambda ui: edit_profile(ui, index))]
        if index < len(s.profiles):
            items.insert(0, ("Activate", lambda ui: offer_select_profile(ui, index)))
            if index != s.active_profile:
                items.append(("Delete", lambda ui: offer_delete_profile(ui, index)))
        ui.push(Menu("profile", "Profile %d" % (index + 1), items))

    return open_profile


def offer_select_profile(ui, index):
    profile = _settings(ui).profiles[index]

    def select(ui):
        return ui.app.select_profile(index)

    lines = ["Use profile", profile.name, text.units_u(profile.daily_total_mu()) + "/day"]
    ui.push(Confirm("confirm profile", "Activate", lines, select))


def offer_delete_profile(ui, index):
    profile = _settings(ui).profiles[index]

    def delete(ui):
        return ui.app.delete_profile(index)

    lines = ["Delete profile", profile.name, text.units_u(profile.daily_total_mu()) + "/day"]
    ui.push(Confirm("confirm delete", "Delete", lines, delete))


def _rate_label(segment):
    return text.slot(segment[0]) + " " + text.units(segment[1]) + "U/h"


def edit_profile(ui, index):
    s = _settings(ui)
    if index < len(s.profiles):
        profile = s.profiles[index]
        name = profile.name
        segments = profile.segments
    else:
        name = "Profile %d" % (index + 1)
        segments = [(0, s.profiles[s.active_profile].rate_at(0))]
    fields = [("Rate", 0, s.max_basal_mu_per_h, lim.RATE_STEP_MU_H, text.rate)]

    def save(ui, new_segments):
        return ui.app.save_profile(index, name, new_segments)

    def summary(new_segments):
        total = 0
        for i in range(len(new_segments)):
            start, value = new_segments[i]
            end = new_segments[i + 1][0] if i + 1 < len(new_segments) else schedule.SLOTS_PER_DAY
            total += value * (end - start)
        return [name, "%d segments" % len(new_segments), text.units_u(total // 2) + "/day"]

    ui.push(SegmentList("Profile", segments, fields, _rate_label, save, summary,
                        schedule.SLOTS_PER_DAY))

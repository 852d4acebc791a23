// Jail steps: the privilege drop to the tenant's uid/gid, verified, then the death
// signal and no_new_privs.
import CBulkhead
import Glibc

enum Identity {
    static func drop(uid: UInt32, gid: UInt32) throws(JailError) {
        guard uid != 0, gid != 0 else { throw JailError(.setUID, "refusing to run a tenant as root") }
        var r = bh_setgroups_none()
        if r < 0 { throw JailError(.dropGroups, "setgroups(0): \(String(cString: strerror(-r)))") }
        r = bh_setresgid(gid, gid, gid)
        if r < 0 { throw JailError(.setGID, "setresgid(\(gid)): \(String(cString: strerror(-r)))") }
        r = bh_setresuid(uid, uid, uid)
        if r < 0 { throw JailError(.setUID, "setresuid(\(uid)): \(String(cString: strerror(-r)))") }
        try verify(uid: uid, gid: gid)
    }

    /// Reads the ids back and proves the drop cannot be undone.
    static func verify(uid: UInt32, gid: UInt32) throws(JailError) {
        var ru: uid_t = 0, eu: uid_t = 0, su: uid_t = 0
        var rg: gid_t = 0, eg: gid_t = 0, sg: gid_t = 0
        guard bh_getresuid(&ru, &eu, &su) == 0, bh_getresgid(&rg, &eg, &sg) == 0 else {
            throw JailError(.verifyIdentity, "getresuid/getresgid failed")
        }
        guard [ru, eu, su] == [uid, uid, uid], [rg, eg, sg] == [gid, gid, gid] else {
            throw JailError(.verifyIdentity, "ids are uid \(ru)/\(eu)/\(su) gid \(rg)/\(eg)/\(sg)")
        }
        guard bh_getgroups_count() == 0 else { throw JailError(.verifyIdentity, "supplementary groups remain") }
        if bh_setresuid(0, 0, 0) == 0 { throw JailError(.verifyIdentity, "setresuid(0) succeeded after the drop") }
    }

    /// PR_SET_PDEATHSIG must follow the drop (a uid change clears it); then a parent
    /// that died before it was armed is caught by comparing getppid.
    static func armParentDeathSignal(expectedParent: Int32) throws(JailError) {
        let r = bh_set_pdeathsig(SIGKILL)
        if r < 0 { throw JailError(.parentDeathSignal, "prctl(PR_SET_PDEATHSIG): \(String(cString: strerror(-r)))") }
        if getppid() != expectedParent { throw JailError(.parentDeathSignal, "the supervisor is gone") }
        // Not dumpable: a sibling worker of the same uid cannot open our /proc files.
        _ = bh_set_dumpable(0)
    }

    static func forbidNewPrivileges() throws(JailError) {
        let r = bh_set_no_new_privs()
        if r < 0 { throw JailError(.noNewPrivileges, "prctl(PR_SET_NO_NEW_PRIVS): \(String(cString: strerror(-r)))") }
        if bh_get_no_new_privs() != 1 { throw JailError(.noNewPrivileges, "no_new_privs did not stick") }
    }
}

// The RateLimit-Policy and RateLimit fields of the IETF httpapi draft
// (draft-ietf-httpapi-ratelimit-headers-10), as structured-field lists:
//   RateLimit-Policy: "default";q=1000;w=3600, "burst";q=10;w=1
//   RateLimit: "default";r=99;t=4, "burst";r=9;t=1
// q/w are a policy's sustained rate; r is what it admits right now (at most its burst)
// and t the whole seconds until its bucket is full again. Shadow policies are not shown.
public enum RateLimitHeaders {
    public static func fields(_ status: RateStatus) -> [(String, String)] {
        guard !status.policies.isEmpty else { return [] }
        var fields = [("RateLimit-Policy", status.policies.map { "\"\($0.name)\";q=\($0.count);w=\($0.periodSeconds)" }
            .joined(separator: ", "))]
        if let states = status.states, states.count == status.policies.count {
            let items = zip(status.policies, states).map { p, s in
                "\"\(p.name)\";r=\(s.remaining);t=\((s.resetNanoseconds + 999_999_999) / 1_000_000_000)"
            }
            fields.append(("RateLimit", items.joined(separator: ", ")))
        }
        return fields
    }
}

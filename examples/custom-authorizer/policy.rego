# The example's policy for a real Open Policy Agent (1.x): the same grants and answers as
# policy.py. Serve it with
#
#   opa run --server --addr 127.0.0.1:8181 examples/custom-authorizer/policy.rego
#
# and Portcullis's `url = "http://127.0.0.1:8181/v1/data/portcullis/authz"` asks the rule `authz`
# below. It answers with every tenant the subject may read; the authorizer narrows that to the
# requested ones. A reason never repeats input.subject: with bearer identities it is a token.
package portcullis

# Subject id → the tenants it may read.
grants := {
	"acme-token": ["acme"],
	"ops-token": ["acme", "globex"],
}

default authz := {"allow": false, "reason": "subject has no grant"}

authz := {"allow": false, "reason": "only read is granted"} if {
	input.permission != "read"
}

authz := {"allow": true, "tenants": grants[input.subject], "reason": "granted by grants"} if {
	input.permission == "read"
	grants[input.subject]
}

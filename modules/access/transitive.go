package access

// Membership is transitive: a user is in a group if a group_members row says so, or if
// they are in a group that is a member of it, and so on. These recursive CTEs walk
// group_members on its indexes (member_group_id, user_id, and the group_id primary key)
// and run alike on PostgreSQL and SQLite. UNION (not UNION ALL) drops repeated rows, so a
// cycle of groups (A in B, B in A) ends instead of looping.

// userGroupsCTE defines ug(user_id, group_id): every group each of a set of users is in,
// directly or through nested groups. Arguments: tenant id, bun.In(user ids).
const userGroupsCTE = `WITH RECURSIVE ug(user_id, group_id) AS (
	SELECT m.user_id, m.group_id FROM group_members AS m
	WHERE m.tenant_id = ? AND m.user_id IN (?)
	UNION
	SELECT ug.user_id, m.group_id FROM ug
	JOIN group_members AS m ON m.member_group_id = ug.group_id
) `

// groupAncestorsCTE defines anc(group_id): a group and every group it is in, directly or
// through nested groups — the groups whose roles its members hold. Argument: group id.
const groupAncestorsCTE = `WITH RECURSIVE anc(group_id) AS (
	SELECT CAST(? AS text)
	UNION
	SELECT m.group_id FROM anc
	JOIN group_members AS m ON m.member_group_id = anc.group_id
) `

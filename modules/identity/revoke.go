package identity

import "context"

// RevokeUserSessions ends every session of a user, as Sessions.RevokeUser does, for
// callers that hold the identity service but no session layer (the access module, which
// decides who may ask). Ending sessions signs nothing, so it needs no key store.
func (s *Service) RevokeUserSessions(ctx context.Context, tenantID, userID string) (int, error) {
	return s.Sessions(nil, SessionsConfig{}).RevokeUser(ctx, tenantID, userID)
}

package mongo

import (
	"context"
	"errors"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo/options"

	qingfeng "github.com/qingfeng-zj/qingfeng"
	"github.com/qingfeng-zj/qingfeng/accounts"
)

// UserStore keeps staff accounts and their refresh sessions.
type UserStore struct{ db *DB }

// NewUserStore returns a UserStore on db.
func NewUserStore(db *DB) *UserStore { return &UserStore{db: db} }

var (
	errUserNotFound    = qingfeng.Errorf(qingfeng.ENOTFOUND, "用户不存在", "user not found")
	errUsernameTaken   = qingfeng.Errorf(qingfeng.ECONFLICT, "用户名已被使用", "the username is taken")
	errSessionNotFound = qingfeng.Errorf(qingfeng.ENOTFOUND, "登录会话不存在或已过期", "session not found or expired")
	errSessionExists   = qingfeng.Errorf(qingfeng.ECONFLICT, "登录会话已存在", "the session already exists")
	errSessionRotated  = qingfeng.Errorf(qingfeng.ECONFLICT, "登录会话已刷新", "the session was refreshed meanwhile")
)

type userDoc struct {
	ID           string    `bson:"_id"`
	Username     string    `bson:"username"`
	DisplayName  string    `bson:"display_name"`
	Role         string    `bson:"role"`
	UnitID       string    `bson:"unit_id,omitempty"`
	Division     string    `bson:"division,omitempty"`
	PasswordHash string    `bson:"password_hash"`
	Disabled     bool      `bson:"disabled"`
	MustChange   bool      `bson:"must_change_password"`
	Generation   int64     `bson:"session_generation"`
	TOTP         totpDoc   `bson:"totp"`
	LastLoginAt  time.Time `bson:"last_login_at,omitempty"`
	CreatedAt    time.Time `bson:"created_at"`
	UpdatedAt    time.Time `bson:"updated_at"`
}

// totpDoc is a second factor: the secrets only sealed (accounts.SecretBox), the
// recovery codes only as keyed hashes.
type totpDoc struct {
	Enabled        bool     `bson:"enabled"`
	Secret         []byte   `bson:"secret_sealed,omitempty"`
	Pending        []byte   `bson:"pending_sealed,omitempty"`
	LastStep       int64    `bson:"last_step"`
	RecoveryHashes []string `bson:"recovery_hashes"`
}

func totpDocOf(t accounts.TOTPState) totpDoc {
	d := totpDoc{Enabled: t.Enabled, Secret: t.Secret, Pending: t.Pending, LastStep: t.LastStep, RecoveryHashes: t.RecoveryHashes}
	if d.RecoveryHashes == nil {
		d.RecoveryHashes = []string{}
	}
	return d
}

type sessionDoc struct {
	ID          string    `bson:"_id"`
	UserID      string    `bson:"user_id"`
	RefreshHash string    `bson:"refresh_hash"`
	PrevHash    string    `bson:"prev_hash,omitempty"`
	RotatedAt   time.Time `bson:"rotated_at,omitempty"`
	Generation  int64     `bson:"generation"`
	CreatedAt   time.Time `bson:"created_at"`
	ExpiresAt   time.Time `bson:"expires_at"`
}

func (d *userDoc) toUser() *accounts.User {
	if len(d.TOTP.RecoveryHashes) == 0 {
		d.TOTP.RecoveryHashes = nil
	}
	return &accounts.User{
		ID:           d.ID,
		Username:     d.Username,
		DisplayName:  d.DisplayName,
		Role:         accounts.Role(d.Role),
		UnitID:       d.UnitID,
		Division:     d.Division,
		PasswordHash: d.PasswordHash,
		Disabled:     d.Disabled,

		MustChangePassword: d.MustChange,
		SessionGeneration:  d.Generation,
		TOTP: accounts.TOTPState{Enabled: d.TOTP.Enabled, Secret: d.TOTP.Secret, Pending: d.TOTP.Pending,
			LastStep: d.TOTP.LastStep, RecoveryHashes: d.TOTP.RecoveryHashes},
		LastLoginAt: d.LastLoginAt,
		CreatedAt:   d.CreatedAt,
		UpdatedAt:   d.UpdatedAt,
	}
}

// CreateUser stores a new account; a taken username (or ID) is ECONFLICT. Usernames
// are compared exactly: normalizing them (case, width) is the accounts package's job.
func (s *UserStore) CreateUser(ctx context.Context, u *accounts.User) error {
	d := userDoc{
		ID:           u.ID,
		Username:     u.Username,
		DisplayName:  u.DisplayName,
		Role:         string(u.Role),
		UnitID:       u.UnitID,
		Division:     u.Division,
		PasswordHash: u.PasswordHash,
		Disabled:     u.Disabled,
		MustChange:   u.MustChangePassword,
		Generation:   u.SessionGeneration,
		TOTP:         totpDocOf(u.TOTP),
		CreatedAt:    utc(u.CreatedAt),
		UpdatedAt:    utc(u.UpdatedAt),
	}
	if _, err := s.db.coll(collUsers).InsertOne(ctx, d); err != nil {
		return storeError("store user "+u.ID, err, nil, errUsernameTaken)
	}
	return nil
}

func (s *UserStore) findUser(ctx context.Context, op string, filter bson.M) (*accounts.User, error) {
	var d userDoc
	if err := s.db.coll(collUsers).FindOne(ctx, filter).Decode(&d); err != nil {
		return nil, storeError(op, err, errUserNotFound, nil)
	}
	return d.toUser(), nil
}

// UserByID returns the account with ID id.
func (s *UserStore) UserByID(ctx context.Context, id string) (*accounts.User, error) {
	return s.findUser(ctx, "find user "+id, bson.M{"_id": id})
}

// UserByUsername returns the account named username.
func (s *UserStore) UserByUsername(ctx context.Context, username string) (*accounts.User, error) {
	return s.findUser(ctx, "find user by username", bson.M{"username": username})
}

// CountUsers returns the number of accounts, disabled ones included.
func (s *UserStore) CountUsers(ctx context.Context) (int64, error) {
	// From the collection's metadata, not a scan.
	n, err := s.db.coll(collUsers).EstimatedDocumentCount(ctx)
	if err != nil {
		return 0, storeError("count users", err, nil, nil)
	}
	return n, nil
}

// setUser applies update to account id if it also matches cond; a missing account
// is ENOTFOUND, a present one not matching cond is conflict.
func (s *UserStore) setUser(ctx context.Context, op, id string, cond, update bson.M, conflict *qingfeng.Error) error {
	if set, ok := update["$set"].(bson.M); ok {
		set["updated_at"] = s.db.now().UTC()
	}
	res, err := s.db.updateOne(ctx, collUsers, id, cond, update)
	if err != nil {
		return storeError(op, err, nil, nil)
	}
	if res.MatchedCount == 0 {
		if cond != nil && conflict != nil {
			if _, err := s.UserByID(ctx, id); err != nil {
				return err
			}
			e := *conflict
			e.Err = errors.New(op + ": condition not met")
			return &e
		}
		e := *errUserNotFound
		e.Err = errors.New(op + ": no such user")
		return &e
	}
	return nil
}

// SetUserDisabled disables or re-enables account id.
func (s *UserStore) SetUserDisabled(ctx context.Context, id string, disabled bool) error {
	return s.setUser(ctx, "set user disabled "+id, id, nil, bson.M{"$set": bson.M{"disabled": disabled}}, nil)
}

// ListUsers returns up to limit accounts with usernames after after, by username.
func (s *UserStore) ListUsers(ctx context.Context, after string, limit int) ([]*accounts.User, error) {
	filter := bson.M{}
	if after != "" {
		filter["username"] = bson.M{"$gt": after}
	}
	return s.listUsers(ctx, "list users", filter, options.Find().SetSort(bson.D{{Key: "username", Value: 1}}).SetLimit(int64(limit)))
}

// UsersOfUnit returns the accounts of unit unitID, disabled ones included, by username.
func (s *UserStore) UsersOfUnit(ctx context.Context, unitID string) ([]*accounts.User, error) {
	if unitID == "" {
		return []*accounts.User{}, nil
	}
	return s.listUsers(ctx, "list users of unit "+unitID, bson.M{"unit_id": unitID},
		options.Find().SetSort(bson.D{{Key: "unit_id", Value: 1}, {Key: "username", Value: 1}}))
}

func (s *UserStore) listUsers(ctx context.Context, op string, filter bson.M, opts *options.FindOptionsBuilder) ([]*accounts.User, error) {
	docs, err := findAll[userDoc](ctx, s.db, collUsers, op, filter, opts)
	if err != nil {
		return nil, err
	}
	out := make([]*accounts.User, len(docs))
	for i := range docs {
		out[i] = docs[i].toUser()
	}
	return out, nil
}

// SetPassword stores a new password hash and the must-change flag of account id.
func (s *UserStore) SetPassword(ctx context.Context, id, hash string, mustChange bool) error {
	return s.setUser(ctx, "set password "+id, id, nil, bson.M{"$set": bson.M{"password_hash": hash, "must_change_password": mustChange}}, nil)
}

// SetTOTP replaces the second-factor state of account id.
func (s *UserStore) SetTOTP(ctx context.Context, id string, t accounts.TOTPState) error {
	return s.setUser(ctx, "set totp "+id, id, nil, bson.M{"$set": bson.M{"totp": totpDocOf(t)}}, nil)
}

// EnableTOTP sets the second-factor state of account id if pending is still its pending
// secret and no second factor is on: of two confirmations racing, one wins.
func (s *UserStore) EnableTOTP(ctx context.Context, id string, pending []byte, t accounts.TOTPState) error {
	return s.setUser(ctx, "enable totp "+id, id, bson.M{"totp.enabled": false, "totp.pending_sealed": pending},
		bson.M{"$set": bson.M{"totp": totpDocOf(t)}}, errTOTPChanged)
}

var errTOTPChanged = qingfeng.Errorf(qingfeng.ECONFLICT, "两步验证设置已变化", "the second factor changed meanwhile")

var errCodeUsed = qingfeng.Errorf(qingfeng.ECONFLICT, "验证码已使用", "the code was already used")

// UseTOTPStep records step as used if it is later than the last used one: one
// conditional update, so of two logins racing with one code only one wins.
func (s *UserStore) UseTOTPStep(ctx context.Context, id string, step int64) error {
	return s.setUser(ctx, "use totp step "+id, id, bson.M{"totp.enabled": true, "totp.last_step": bson.M{"$lt": step}},
		bson.M{"$set": bson.M{"totp.last_step": step}}, errCodeUsed)
}

// UseRecoveryCode removes hash from account id's recovery codes, if it is there.
func (s *UserStore) UseRecoveryCode(ctx context.Context, id, hash string) error {
	return s.setUser(ctx, "use recovery code "+id, id, bson.M{"totp.enabled": true, "totp.recovery_hashes": hash},
		bson.M{"$pull": bson.M{"totp.recovery_hashes": hash}, "$set": bson.M{}}, errCodeUsed)
}

// RecordLogin sets the last login time of account id.
func (s *UserStore) RecordLogin(ctx context.Context, id string, at time.Time) error {
	if _, err := s.db.updateOne(ctx, collUsers, id, nil, bson.M{"$set": bson.M{"last_login_at": utc(at)}}); err != nil {
		return storeError("record login "+id, err, nil, nil)
	}
	return nil
}

// RevokeSessions ends every session of account userID: the generation bump makes any
// session opened concurrently (from a user document read before it) invalid too.
func (s *UserStore) RevokeSessions(ctx context.Context, userID string) error {
	if err := s.setUser(ctx, "revoke sessions of "+userID, userID, nil, bson.M{"$inc": bson.M{"session_generation": 1}, "$set": bson.M{}}, nil); err != nil {
		return err
	}
	return s.DeleteUserSessions(ctx, userID, "")
}

// DeleteUserSessions deletes the sessions of account userID except session except.
func (s *UserStore) DeleteUserSessions(ctx context.Context, userID, except string) error {
	filter := bson.M{"user_id": userID}
	if except != "" {
		filter["_id"] = bson.M{"$ne": except}
	}
	if _, err := s.db.coll(collSessions).DeleteMany(ctx, filter); err != nil {
		return storeError("delete sessions of "+userID, err, nil, nil)
	}
	return nil
}

// CreateSession stores a new refresh session.
func (s *UserStore) CreateSession(ctx context.Context, sess *accounts.Session) error {
	d := sessionDoc{
		ID:          sess.ID,
		UserID:      sess.UserID,
		RefreshHash: sess.RefreshHash,
		Generation:  sess.Generation,
		CreatedAt:   utc(sess.CreatedAt),
		ExpiresAt:   utc(sess.ExpiresAt),
	}
	if _, err := s.db.coll(collSessions).InsertOne(ctx, d); err != nil {
		return storeError("store session "+sess.ID, err, nil, errSessionExists)
	}
	return nil
}

// RotateSession replaces the refresh hash of live session id by newHash if it still
// equals oldHash, keeping oldHash as the previous hash rotated at at. The comparison
// and the replacement are one conditional update, so of two refreshes racing with one
// secret exactly one rotates; the other gets ECONFLICT and judges by what it finds.
func (s *UserStore) RotateSession(ctx context.Context, id, oldHash, newHash string, at, expires time.Time) error {
	op := "rotate session " + id
	now := s.db.now().UTC()
	res, err := s.db.updateOne(ctx, collSessions, id,
		bson.M{"refresh_hash": oldHash, "expires_at": bson.M{"$gt": now}},
		bson.M{"$set": bson.M{"refresh_hash": newHash, "prev_hash": oldHash, "rotated_at": utc(at), "expires_at": utc(expires)}})
	if err != nil {
		return storeError(op, err, nil, nil)
	}
	if res.MatchedCount == 0 {
		if _, err := s.SessionByID(ctx, id); err != nil {
			return err
		}
		e := *errSessionRotated
		e.Err = errors.New(op + ": the refresh hash changed")
		return &e
	}
	return nil
}

// SessionByID returns live session id; an expired one is ENOTFOUND.
func (s *UserStore) SessionByID(ctx context.Context, id string) (*accounts.Session, error) {
	var d sessionDoc
	err := s.db.coll(collSessions).FindOne(ctx, bson.M{
		"_id":        id,
		"expires_at": bson.M{"$gt": s.db.now().UTC()},
	}).Decode(&d)
	if err != nil {
		return nil, storeError("find session "+id, err, errSessionNotFound, nil)
	}
	return &accounts.Session{
		ID:          d.ID,
		UserID:      d.UserID,
		RefreshHash: d.RefreshHash,
		PrevHash:    d.PrevHash,
		RotatedAt:   d.RotatedAt,
		Generation:  d.Generation,
		CreatedAt:   d.CreatedAt,
		ExpiresAt:   d.ExpiresAt,
	}, nil
}

// DeleteSession removes session id (logout); a missing session is not an error, so
// logging out twice is harmless.
func (s *UserStore) DeleteSession(ctx context.Context, id string) error {
	if _, err := s.db.coll(collSessions).DeleteOne(ctx, bson.M{"_id": id}); err != nil {
		return storeError("delete session "+id, err, nil, nil)
	}
	return nil
}

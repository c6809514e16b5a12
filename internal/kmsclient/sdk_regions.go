package kmsclient

import (
	"context"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kms"
	"github.com/aws/aws-sdk-go-v2/service/kms/types"
)

// addMultiRegion copies a multi-Region key's configuration into k.
func addMultiRegion(k *Key, c *types.MultiRegionConfiguration) {
	if c == nil {
		return
	}
	k.MultiRegionType = string(c.MultiRegionKeyType)
	if c.PrimaryKey != nil {
		k.PrimaryRegion = aws.ToString(c.PrimaryKey.Region)
	}
	for _, r := range c.ReplicaKeys {
		k.ReplicaRegions = append(k.ReplicaRegions, aws.ToString(r.Region))
	}
}

// ReplicateKey is sent to the primary key's region, with the replica's
// region in the request. It is retried like any call: a retry after a lost
// answer is AlreadyExistsException, and the replica (same key id, known
// region) is then found by DescribeKey.
func (c *sdkClient) ReplicateKey(ctx context.Context, in ReplicateKeyInput) (*Key, error) {
	req := &kms.ReplicateKeyInput{
		KeyId:                          &in.KeyID,
		ReplicaRegion:                  &in.Region,
		BypassPolicyLockoutSafetyCheck: in.BypassPolicyLockoutSafetyCheck,
		Tags:                           toTags(in.Tags),
	}
	if in.Description != "" {
		req.Description = &in.Description
	}
	if in.Policy != "" {
		req.Policy = &in.Policy
	}
	out, err := c.kms.ReplicateKey(ctx, req)
	if err != nil {
		return nil, classify("ReplicateKey", err)
	}
	return toKey(out.ReplicaKeyMetadata), nil
}

func (c *sdkClient) UpdatePrimaryRegion(ctx context.Context, keyID, region string) error {
	_, err := c.kms.UpdatePrimaryRegion(ctx, &kms.UpdatePrimaryRegionInput{KeyId: &keyID, PrimaryRegion: &region})
	return classify("UpdatePrimaryRegion", err)
}

func (c *sdkClient) GetParametersForImport(ctx context.Context, keyID, wrappingAlgorithm, wrappingKeySpec string) (*ImportParameters, error) {
	out, err := c.kms.GetParametersForImport(ctx, &kms.GetParametersForImportInput{
		KeyId:             &keyID,
		WrappingAlgorithm: types.AlgorithmSpec(wrappingAlgorithm),
		WrappingKeySpec:   types.WrappingKeySpec(wrappingKeySpec),
	})
	if err != nil {
		return nil, classify("GetParametersForImport", err)
	}
	return &ImportParameters{PublicKey: out.PublicKey, ImportToken: out.ImportToken, ValidTo: aws.ToTime(out.ParametersValidTo)}, nil
}

// ImportKeyMaterial sends wrapped material only: the plaintext never reaches
// this package.
func (c *sdkClient) ImportKeyMaterial(ctx context.Context, in ImportKeyMaterialInput) (string, error) {
	req := &kms.ImportKeyMaterialInput{
		KeyId:                &in.KeyID,
		ImportToken:          in.ImportToken,
		EncryptedKeyMaterial: in.EncryptedKeyMaterial,
		ImportType:           types.ImportType(in.ImportType),
		ExpirationModel:      types.ExpirationModelTypeKeyMaterialDoesNotExpire,
	}
	if in.KeyMaterialID != "" {
		req.KeyMaterialId = &in.KeyMaterialID
	}
	if in.ValidTo != nil {
		req.ExpirationModel, req.ValidTo = types.ExpirationModelTypeKeyMaterialExpires, in.ValidTo
	}
	out, err := c.kms.ImportKeyMaterial(ctx, req)
	if err != nil {
		return "", classify("ImportKeyMaterial", err)
	}
	return aws.ToString(out.KeyMaterialId), nil
}

func (c *sdkClient) ListKeyMaterials(ctx context.Context, keyID string) ([]KeyMaterial, error) {
	var materials []KeyMaterial
	pages := kms.NewListKeyRotationsPaginator(c.kms, &kms.ListKeyRotationsInput{KeyId: &keyID, IncludeKeyMaterial: types.IncludeKeyMaterialAllKeyMaterial})
	for pages.HasMorePages() {
		page, err := pages.NextPage(ctx)
		if err != nil {
			return nil, classify("ListKeyRotations", err)
		}
		for _, r := range page.Rotations {
			materials = append(materials, KeyMaterial{
				ID:           aws.ToString(r.KeyMaterialId),
				State:        string(r.KeyMaterialState),
				ImportState:  string(r.ImportState),
				ValidTo:      r.ValidTo,
				RotationDate: r.RotationDate,
			})
		}
	}
	return materials, nil
}

func (c *sdkClient) DeleteImportedKeyMaterial(ctx context.Context, keyID, keyMaterialID string) error {
	req := &kms.DeleteImportedKeyMaterialInput{KeyId: &keyID}
	if keyMaterialID != "" {
		req.KeyMaterialId = &keyMaterialID
	}
	_, err := c.kms.DeleteImportedKeyMaterial(ctx, req)
	return classify("DeleteImportedKeyMaterial", err)
}

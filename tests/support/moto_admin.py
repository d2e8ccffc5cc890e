#!/usr/bin/env python3
"""Test-side set-up of moto state that the tool itself never creates (uses the AWS_* test
environment: explicit loopback endpoint, static credentials).
  moto_admin.py instances COUNT TAG_KEY TAG_VALUE   -> prints the new instance ids, one per line
  moto_admin.py document NAME PATH                  -> creates an SSM Command document from PATH
"""
import sys
import boto3

command = sys.argv[1]
if command == "instances":
    count, key, value = int(sys.argv[2]), sys.argv[3], sys.argv[4]
    ec2 = boto3.client("ec2")
    ids = []
    while len(ids) < count:
        batch = min(250, count - len(ids))
        reservation = ec2.run_instances(
            ImageId="ami-12c6146b", MinCount=batch, MaxCount=batch, InstanceType="t3.micro",
            TagSpecifications=[{"ResourceType": "instance", "Tags": [{"Key": key, "Value": value}]}],
        )
        ids += [i["InstanceId"] for i in reservation["Instances"]]
    print("\n".join(ids))
elif command == "document":
    name, path = sys.argv[2], sys.argv[3]
    boto3.client("ssm").create_document(Name=name, Content=open(path).read(), DocumentType="Command", DocumentFormat="JSON")
else:
    sys.exit("unknown command")
